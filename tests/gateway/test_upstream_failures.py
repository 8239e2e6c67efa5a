"""RunPod's API failing (5xx, unreachable) is ``upstream_error`` and retryable; never a worker error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from litestar import Response, get, post

from tests.gateway.conftest import Gateway, start_gateway
from tests.support.servers import free_port, serve, stub_app

ADMIN = "adm-upstream"


@post("/v2/{endpoint:str}/run")
async def _run_fails(endpoint: str) -> Response[dict[str, str]]:
    return Response({"error": "RunPod is having a bad day"}, status_code=502)


@post("/v2/{endpoint:str}/runsync")
async def _runsync_fails(endpoint: str) -> Response[dict[str, str]]:
    return Response({"error": "internal"}, status_code=500)


@get("/v2/{endpoint:str}/health")
async def _health_fails(endpoint: str) -> Response[str]:
    return Response("upstream connect error", status_code=503, media_type="text/plain")


@get("/v2/{endpoint:str}/status/{job_id:str}")
async def _status_missing(endpoint: str, job_id: str) -> Response[dict[str, str]]:
    return Response({"error": "job not found"}, status_code=404)


@post("/v2/{endpoint:str}/openai/v1/chat/completions")
async def _openai_proxy_fails(endpoint: str) -> Response[dict[str, str]]:
    return Response({"error": "no workers available"}, status_code=502)


@post("/v2/{endpoint:str}/openai/v1/embeddings")
async def _openai_worker_fails(endpoint: str) -> Response[dict[str, Any]]:
    # The worker's own error (an error object) keeps its meaning.
    error = {"message": "CUDA out of memory", "type": "server_error", "code": "oom"}
    return Response({"error": error}, status_code=500)


@pytest.fixture(scope="module")
def failing_gateway(redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    handlers = [_run_fails, _runsync_fails, _health_fails, _status_missing, _openai_proxy_fails, _openai_worker_fails]
    with serve(stub_app(*handlers)) as stub:
        gw = start_gateway(f"{stub.url}/v2", redis_url, redis_prefix + "upfail:", admin_key=ADMIN)
        yield gw
        gw.server.stop()


@pytest.fixture(scope="module")
def unreachable_gateway(redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    gw = start_gateway(f"http://127.0.0.1:{free_port()}/v2", redis_url, redis_prefix + "upgone:", admin_key=ADMIN)
    yield gw
    gw.server.stop()


def _async_chat(gateway: Gateway) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {ADMIN}", "prefer": "respond-async"},
    )


def _assert_upstream_error(response: httpx.Response, status: int = 502) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == "upstream_error"
    assert error["type"] == "server_error"
    assert "x-should-retry" not in response.headers  # nothing ran: a retry is safe


def test_run_5xx_with_error_body_is_upstream_error(failing_gateway: Gateway) -> None:
    response = _async_chat(failing_gateway)
    _assert_upstream_error(response)
    assert "RunPod answered HTTP 502" in response.json()["error"]["message"]


def test_runsync_5xx_through_the_sdk_is_retryable_upstream_error(failing_gateway: Gateway) -> None:
    client = failing_gateway.client(ADMIN)
    with pytest.raises(openai.InternalServerError) as caught:
        client.images.generate(prompt="a fox")
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_error"
    assert "x-should-retry" not in caught.value.response.headers


def test_passthrough_5xx_from_runpod_is_upstream_error(failing_gateway: Gateway) -> None:
    client = failing_gateway.client(ADMIN)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_error"
    # Passthrough requests are never retried: the worker may already have run them.
    assert caught.value.response.headers["x-should-retry"] == "false"


def test_passthrough_worker_error_keeps_its_code(failing_gateway: Gateway) -> None:
    client = failing_gateway.client(ADMIN)
    with pytest.raises(openai.APIStatusError) as caught:
        client.embeddings.create(model="tiny-embed", input="x")
    assert caught.value.status_code == 502
    assert caught.value.code == "oom"


def test_unreachable_runpod_is_upstream_error(unreachable_gateway: Gateway) -> None:
    _assert_upstream_error(_async_chat(unreachable_gateway))


def test_ops_route_5xx_answers_in_the_gateway_shape(failing_gateway: Gateway) -> None:
    response = httpx.get(f"{failing_gateway.url}/v1/runpod/ep1/health", headers={"authorization": f"Bearer {ADMIN}"})
    _assert_upstream_error(response)
    assert "upstream connect error" in response.json()["error"]["message"]


def test_ops_route_4xx_stays_verbatim(failing_gateway: Gateway) -> None:
    response = httpx.get(
        f"{failing_gateway.url}/v1/runpod/ep1/status/abc", headers={"authorization": f"Bearer {ADMIN}"}
    )
    assert response.status_code == 404
    assert response.json() == {"error": "job not found"}


def test_ops_route_unreachable_is_upstream_error(unreachable_gateway: Gateway) -> None:
    response = httpx.post(
        f"{unreachable_gateway.url}/v1/runpod/ep1/run", json={"input": {}}, headers={"authorization": f"Bearer {ADMIN}"}
    )
    _assert_upstream_error(response)


