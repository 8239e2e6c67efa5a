"""The reference's Jobs routes: surface enum, provider-agnostic lookup for admin keys, the WebSocket's 426."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import ADMIN_KEY, RUNPOD_KEY, Gateway
from tests.support.servers import ServerThread

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def _provider_job(emulator: ServerThread, endpoint: str, job_input: dict[str, Any]) -> str:
    """A job queued on RunPod (the emulator) directly: the gateway has no record of it."""
    headers = {"authorization": f"Bearer {RUNPOD_KEY}"}
    response = httpx.post(f"{emulator.url}/v2/{endpoint}/run", json={"input": job_input}, headers=headers)
    assert response.status_code == 200, response.text
    job_id: str = response.json()["id"]
    return job_id


def _wait_done(gateway: Gateway, surface: str, job_id: str, query: str = "") -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        response = httpx.get(f"{gateway.url}/v1/jobs/{surface}/{job_id}{query}", headers=ADMIN, timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


@pytest.mark.parametrize("suffix", ["", "/download", "/ws"])
def test_unknown_surface_is_a_400_naming_surface(gateway: Gateway, api_key: str, suffix: str) -> None:
    response = httpx.get(
        f"{gateway.url}/v1/jobs/not-a-surface/abc{suffix}", headers={"authorization": f"Bearer {api_key}"}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "surface"
    assert error["type"] == "invalid_request_error"


def test_plain_get_on_the_websocket_route_is_426(gateway: Gateway, api_key: str) -> None:
    response = httpx.get(f"{gateway.url}/v1/jobs/chat/abc/ws", headers={"authorization": f"Bearer {api_key}"})
    assert response.status_code == 426
    assert response.json()["error"]["code"] == "upgrade_required"
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["upgrade"] == "websocket"


def test_admin_sees_a_provider_job_rendered_like_any_job(gateway: Gateway, emulator: ServerThread) -> None:
    job_id = _provider_job(
        emulator, "chat-ep",
        {"openai_route": "/v1/chat/completions", "openai_input": {"messages": [{"role": "user", "content": "pj"}]}},
    )
    body = _wait_done(gateway, "chat", job_id)
    assert body["status"] == "COMPLETED"
    assert body["output"]["object"] == "chat.completion"
    assert "input" not in body
    as_text = httpx.get(f"{gateway.url}/v1/jobs/chat/{job_id}/download?format=txt", headers=ADMIN)
    assert as_text.status_code == 200
    assert as_text.text == "echo: pj"
    assert as_text.headers["content-type"] == "text/plain; charset=utf-8"
    assert as_text.headers["content-disposition"] == f'attachment; filename="{job_id}.txt"'


def test_admin_downloads_a_provider_image_job_as_links(gateway: Gateway, emulator: ServerThread) -> None:
    job_id = _provider_job(emulator, "img-ep", {"prompt": "provider fox"})
    assert _wait_done(gateway, "images", job_id)["status"] == "COMPLETED"
    links = httpx.get(f"{gateway.url}/v1/jobs/images/{job_id}/download", headers=ADMIN).json()
    assert links["mode"] == "links" and links["job_id"] == job_id and links["surface"] == "images"
    assert httpx.get(links["links"][0]).status_code == 200


def test_endpoint_id_picks_the_endpoint(gateway: Gateway, emulator: ServerThread) -> None:
    job_id = _provider_job(emulator, "img-ep", {"prompt": "elsewhere"})
    # The chat surface's endpoint does not know this job; endpointId points at the right one.
    assert httpx.get(f"{gateway.url}/v1/jobs/chat/{job_id}", headers=ADMIN).status_code == 404
    assert _wait_done(gateway, "chat", job_id, "?endpointId=img-ep")["status"] in ("COMPLETED", "FAILED")


def test_tenant_keys_never_see_provider_jobs(gateway: Gateway, emulator: ServerThread, api_key: str) -> None:
    job_id = _provider_job(emulator, "img-ep", {"prompt": "not yours"})
    tenant = {"authorization": f"Bearer {api_key}"}
    for suffix in ("", "/download"):
        response = httpx.get(f"{gateway.url}/v1/jobs/images/{job_id}{suffix}", headers=tenant)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "job_not_found"
    forbidden = httpx.get(f"{gateway.url}/v1/jobs/images/{job_id}?endpointId=img-ep", headers=tenant)
    assert forbidden.status_code == 403


def test_unknown_provider_job_is_404_for_admins(gateway: Gateway) -> None:
    response = httpx.get(f"{gateway.url}/v1/jobs/images/no-such-job", headers=ADMIN)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "job_not_found"

