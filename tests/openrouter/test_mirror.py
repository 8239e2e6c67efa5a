"""Every OpenAI route under /v1 is served under /api/v1 too, by the same handler; the OpenAPI
document keeps one operation per route; an explicit /api/v1 handler wins over a mirror."""

from __future__ import annotations

import time
from typing import Any

import httpx
from litestar import get

from app.main import OPENAI_ROUTES
from app.openrouter.mirror import mirrored, taken_paths
from tests.gateway.conftest import Gateway
from tests.openrouter.conftest import CHAT_MODEL, http


def _routes(gateway: Gateway) -> set[str]:
    return {route.path for route in gateway.app.routes}


def test_each_openai_path_has_its_api_v1_twin(free: Gateway) -> None:
    paths = _routes(free)
    openai_paths = {path for handler in OPENAI_ROUTES for path in handler.paths}
    assert openai_paths and all(path.startswith("/v1/") for path in openai_paths)
    for path in openai_paths:
        assert path in paths and "/api" + path.replace("{model_id:path}", "{model_path:path}") in paths, path
    documented = free.app.openapi_schema.paths or {}
    assert "/api/v1/chat/completions" not in documented and "/v1/chat/completions" in documented


def test_an_explicit_handler_wins_over_the_mirror() -> None:
    @get("/api/v1/embeddings", sync_to_thread=False)
    def other() -> str:
        return "mine"

    handlers: list[Any] = list(OPENAI_ROUTES)
    mirrors = mirrored(handlers, taken=taken_paths([other]))
    mirrored_paths = {path for mirror in mirrors for path in mirror.paths}
    # A GET takes nothing from the POST mirror; a POST on the same path would.
    assert "/api/v1/embeddings" in mirrored_paths

    @get("/api/v1/models/{other_name:path}", sync_to_thread=False)
    def models(other_name: str) -> str:
        return other_name

    mirrors = mirrored(handlers, taken=taken_paths([models]))
    assert "/api/v1/models/{model_id:path}" not in {path for mirror in mirrors for path in mirror.paths}
    assert all(mirror is not handler for mirror in mirrors for handler in handlers)


def test_jobs_api_under_api_v1(free: Gateway, free_key: tuple[str, str]) -> None:
    with http(free, free_key[0]) as client:
        queued = client.post("/chat/completions", json={"model": CHAT_MODEL, "messages": [{"role": "user",
                             "content": "bare job"}]}, headers={"prefer": "respond-async"})
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["id"]
        deadline = time.monotonic() + 10
        while True:
            status = client.get(f"/jobs/chat/{job_id}")
            assert status.status_code == 200, status.text
            if status.json()["status"] == "COMPLETED" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        missing = client.get("/jobs/chat/no-such-job")
    body = status.json()
    assert body["status"] == "COMPLETED", body
    output = body["output"]
    assert output["object"] == "chat.completion" and output["id"] == job_id and output["system_fingerprint"] is None
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404


def test_unauthenticated_api_v1_is_refused(free: Gateway) -> None:
    response = httpx.get(f"{free.url}/api/v1/models")
    assert response.status_code == 401 and response.json()["error"]["code"] == 401


def test_metrics_label_mirrored_routes_by_surface() -> None:
    from app.observability.middleware import surface_of

    assert surface_of("/api/v1/chat/completions") == surface_of("/v1/chat/completions") == "chat"
    assert surface_of("/api/v1/jobs/images/abc") == "images"
    assert surface_of("/api/v1/client/txt2img") is None
