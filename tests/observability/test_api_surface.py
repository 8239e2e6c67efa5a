"""OpenAPI at /schema, CORS for browser clients (HTTP and WebSocket origin), /readyz checks."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from litestar.handlers import HTTPRouteHandler
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.gateway.conftest import Gateway, start_gateway
from tests.support.servers import ServerThread, free_port

ALLOWED = "https://app.example"


@pytest.fixture(scope="module")
def browser_gateway(emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    prefix = f"{redis_prefix}cors{uuid.uuid4().hex[:6]}:"
    gw = start_gateway(f"{emulator.url}/v2", redis_url, prefix, cors_origins=(ALLOWED, "https://other.example"))
    yield gw
    gw.server.stop()


@pytest.fixture(scope="module")
def plain_gateway(emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    gw = start_gateway(f"{emulator.url}/v2", redis_url, f"{redis_prefix}plain{uuid.uuid4().hex[:6]}:")
    yield gw
    gw.server.stop()


def test_openapi_documents_every_v1_route(plain_gateway: Gateway) -> None:
    doc = httpx.get(f"{plain_gateway.url}/schema/openapi.json").json()
    served = {
        (method.lower(), re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in plain_gateway.app.routes
        for handler in getattr(route, "route_handlers", [])
        if isinstance(handler, HTTPRouteHandler) and handler.include_in_schema
        for method in handler.http_methods
        if route.path.startswith("/v1/") and method != "OPTIONS"
    }
    assert len(served) >= 19  # the four surfaces, models, jobs, files, results, the RunPod proxy
    for method, path in served:
        operation = doc["paths"][path][method]
        assert operation["summary"] and operation["description"] and operation["tags"], (method, path)
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):  # never Litestar's own error shape: ours
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}

    chat = doc["paths"]["/v1/chat/completions"]["post"]
    queued = chat["responses"]["202"]["content"]["application/json"]["examples"]
    [example] = queued.values()
    assert example["value"]["object"] == "chat.completion.enqueue"
    assert set(example["value"]) == {"id", "object", "created", "status", "surface", "model", "endpoint_id", "runpod"}
    assert chat["requestBody"]["content"]["application/json"]["schema"]["required"] == ["messages"]
    [error] = chat["responses"]["503"]["content"]["application/json"]["examples"].values()
    assert error["value"]["error"]["code"] == "missing_endpoint_id"
    status = doc["paths"]["/v1/jobs/{surface}/{jobId}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert {"id", "status", "delayTime", "executionTime"} <= set(next(iter(status["examples"].values()))["value"])
    assert "multipart/form-data" in doc["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]

    page = httpx.get(f"{plain_gateway.url}/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in page.text and "/v1/chat/completions" in page.text  # the spec is inlined


def test_cors_for_allowed_origins(browser_gateway: Gateway) -> None:
    url = browser_gateway.url
    preflight = httpx.options(
        f"{url}/v1/jobs/chat/some-job",
        headers={
            "origin": ALLOWED,
            "access-control-request-method": "GET",
            "access-control-request-headers": "authorization, x-stainless-lang",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()

    key = browser_gateway.issue_key("browser").key
    answer = httpx.get(f"{url}/v1/jobs/chat/unknown", headers={"origin": ALLOWED, "authorization": f"Bearer {key}"})
    assert answer.status_code == 404
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    exposed = answer.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed and "retry-after" in exposed and "location" in exposed

    evil = httpx.options(
        f"{url}/v1/chat/completions",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in evil.headers
    plain = httpx.get(f"{url}/v1/models", headers={"origin": "https://evil.example", "authorization": f"Bearer {key}"})
    assert "access-control-allow-origin" not in plain.headers


def _ws_status(url: str, origin: str | None) -> int:
    """101 when the handshake is accepted, else the HTTP status it was refused with."""
    try:
        with connect(url, origin=origin, open_timeout=5):  # type: ignore[arg-type]
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_websocket_origin_check(browser_gateway: Gateway, plain_gateway: Gateway) -> None:
    path = "/v1/jobs/chat/unknown-job/ws"
    browser = browser_gateway.url.replace("http://", "ws://") + path
    assert _ws_status(browser, ALLOWED) == 101
    assert _ws_status(browser, "https://other.example") == 101
    assert _ws_status(browser, "https://evil.example") == 403
    assert _ws_status(browser, None) == 101  # SDKs and servers send no Origin

    plain = plain_gateway.url.replace("http://", "ws://") + path
    assert _ws_status(plain, ALLOWED) == 403  # none allowed by default...
    assert _ws_status(plain, plain_gateway.url) == 101  # ...but the gateway's own pages are
    assert _ws_status(plain, None) == 101


def test_no_cors_by_default(plain_gateway: Gateway) -> None:
    preflight = httpx.options(
        f"{plain_gateway.url}/v1/chat/completions",
        headers={"origin": ALLOWED, "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_readyz_reports_each_check(emulator: ServerThread, redis_url: str, redis_prefix: str) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    # An admin key keeps startup from needing Redis (no open-mode check).
    gw = start_gateway(f"{emulator.url}/v2", dead_redis, f"{redis_prefix}ready:", admin_key="adm")
    try:
        started = time.monotonic()
        ready = httpx.get(f"{gw.url}/readyz", timeout=5)
        assert time.monotonic() - started < 3
        assert ready.status_code == 503
        body = ready.json()
        assert body["checks"]["redis"] is False and body["checks"]["upstream"] is True
        assert body["checks"]["routing"]["source"] == "test-routing.yaml"
        assert body["draining"] is False
    finally:
        gw.server.stop()

    unrouted = "surfaces:\n  chat:\n    models: {m: {endpoint_id: ''}}\n"
    gw = start_gateway(f"{emulator.url}/v2", redis_url, f"{redis_prefix}ready2:", admin_key="adm", routing=unrouted)
    try:
        ready = httpx.get(f"{gw.url}/readyz", timeout=5)
        assert ready.status_code == 503 and ready.json()["checks"]["upstream"] is False
    finally:
        gw.server.stop()
