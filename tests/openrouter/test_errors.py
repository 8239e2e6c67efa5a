"""Under /api/v1 errors take OpenRouter's shape, so its SDK raises its typed errors; /v1 keeps
OpenAI's and /api/v1/client/ the native envelope."""

from __future__ import annotations

import httpx
import pytest
from openrouter import errors

from tests.billing.conftest import new_key
from tests.gateway.conftest import Gateway
from tests.openrouter.conftest import CHAT_MODEL, EMBED_MODEL, http, sdk

HELLO = [{"role": "user", "content": "hello"}]


def test_bad_request_is_typed_and_names_the_field(free: Gateway, free_key: tuple[str, str]) -> None:
    with sdk(free, free_key[0]) as client, pytest.raises(errors.BadRequestResponseError) as caught:
        client.chat.send(model=CHAT_MODEL, messages=HELLO, temperature=7)
    assert caught.value.data.error.code == 400
    assert "temperature" in caught.value.data.error.message
    assert caught.value.data.error.metadata == {"code": "invalid_value", "type": "invalid_request_error",
                                                "param": "temperature", "error_type": "invalid_request"}


def test_wrong_key_is_unauthorized(free: Gateway) -> None:
    with sdk(free, "dry-not-a-key") as client, pytest.raises(errors.UnauthorizedResponseError) as caught:
        client.chat.send(model=CHAT_MODEL, messages=HELLO)
    assert caught.value.data.error.code == 401


def test_unknown_model_is_not_found(free: Gateway, free_key: tuple[str, str]) -> None:
    with sdk(free, free_key[0]) as client, pytest.raises(errors.NotFoundResponseError) as caught:
        client.chat.send(model="Nope", messages=HELLO)
    assert caught.value.data.error.code == 404
    metadata = caught.value.data.error.metadata
    assert isinstance(metadata, dict) and metadata["code"] == "model_not_found"


def test_rate_limit_is_too_many_requests(free: Gateway) -> None:
    key, _ = new_key(free, tier="basic")  # the shipped tier: 10 requests a minute on /v1 routes
    with sdk(free, key) as client:
        for _ in range(10):
            client.embeddings.generate(model=EMBED_MODEL, input="counted")
        with pytest.raises(errors.TooManyRequestsResponseError) as caught:
            client.embeddings.generate(model=EMBED_MODEL, input="one too many")
    assert caught.value.data.error.code == 429
    metadata = caught.value.data.error.metadata
    assert isinstance(metadata, dict) and metadata["code"] == "rate_limit_exceeded"
    assert int(caught.value.headers["retry-after"]) >= 1


def test_each_prefix_keeps_its_dialect(free: Gateway, free_key: tuple[str, str]) -> None:
    headers = {"Authorization": f"Bearer {free_key[0]}"}
    openai_shape = httpx.post(f"{free.url}/v1/chat/completions", json={"messages": []}, headers=headers)
    assert openai_shape.status_code == 400
    assert openai_shape.json()["error"]["code"] == "invalid_value"
    with http(free, free_key[0]) as client:
        routed = client.get("/no-such-route")
        native = client.get("/client/no-such-route")
    assert routed.status_code == 404
    assert routed.json()["error"]["code"] == 404 and routed.json()["error"]["metadata"]["code"] == "not_found"
    assert native.status_code == 404 and native.json()["statusCode"] == 404 and "error" not in native.json()
