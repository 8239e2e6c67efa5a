"""Model listing, auth failures, router errors, missing endpoints, RunPod throttling."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from litestar import Response, post

from tests.gateway.conftest import Gateway, start_gateway
from tests.support.servers import ServerThread, serve, stub_app


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == ["tiny-chat", "unrouted-chat", "limited-chat", "tiny-embed", "tiny-image", "tiny-whisper"]
    assert client.models.retrieve("whisper-1").id == "tiny-whisper"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-9")
    assert caught.value.code == "model_not_found"


def test_unknown_model_is_404_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"


def test_bad_and_missing_keys(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError):
        gateway.client("dry-wrong").models.list()
    response = httpx.get(f"{gateway.url}/v1/models")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_admin_env_key_works(gateway: Gateway) -> None:
    assert gateway.client("admin-test-key").models.list().data


def test_router_errors_are_openai_shaped(gateway: Gateway, api_key: str) -> None:
    headers = {"authorization": f"Bearer {api_key}"}
    missing = httpx.get(f"{gateway.url}/v1/nothing-here", headers=headers)
    assert missing.status_code == 404
    assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
    wrong_method = httpx.get(f"{gateway.url}/v1/chat/completions", headers=headers)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_surface_model_without_endpoint_is_503_missing_endpoint_id(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="unrouted-chat", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 503
    assert caught.value.code == "missing_endpoint_id"
    assert caught.value.body["message"] == "No RunPod endpoint configured for surface chat"  # type: ignore[index]
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert caught.value.response.headers["retry-after"]


@post("/v2/limited/openai/v1/chat/completions")
async def _throttled() -> Response[dict[str, str]]:
    return Response({"error": "too many"}, status_code=429, headers={"retry-after": "7"})


@pytest.fixture(scope="module")
def throttled_gateway(emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    with serve(stub_app(_throttled)) as stub:
        gw = start_gateway(
            f"{emulator.url}/v2", redis_url, redis_prefix + "throttle:", limited_upstream=f"{stub.url}/v2",
            admin_key="adm",
        )
        yield gw
        gw.server.stop()


def test_runpod_429_is_503_with_retry_after(throttled_gateway: Gateway) -> None:
    client = throttled_gateway.client("adm")
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="limited-chat", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 503
    assert caught.value.response.headers["retry-after"] == "7"
