"""Values a /v1 body cannot mean are 400s naming the field, before any worker sees them."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.gateway import workers
from tests.gateway.conftest import Gateway

MESSAGES = [{"role": "user", "content": "hi"}]
HUGE = 10**30


def _post(gateway: Gateway, api_key: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{gateway.url}{path}", headers={"authorization": f"Bearer {api_key}"}, timeout=30, **kwargs)


def _assert_400(response: httpx.Response, param: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param or error["param"].startswith((f"{param}.", f"{param}[")), error
    assert len(response.content) < 2000  # the offending value is not echoed back


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": HUGE}, "max_tokens"),
        ({"max_completion_tokens": 2**40}, "max_completion_tokens"),
        ({"seed": 2**63}, "seed"),
        ({"seed": -(2**63) - 1}, "seed"),
        ({"stop": ["x"] * 100_000}, "stop"),
        ({"messages": MESSAGES * 100_000}, "messages"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}] * 100_000}, "tools"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"logit_bias": {"5": 1000}}, "logit_bias"),
        ({"extra_body_field": [0] * 100_000}, "extra_body_field"),
        ({"extra_body_field": {"deep": [1, HUGE]}}, "extra_body_field.deep.1"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}] * 100_000}]}, "messages.0.content"),
    ],
)
def test_chat_bounds(gateway: Gateway, api_key: str, body: dict[str, Any], param: str) -> None:
    _assert_400(_post(gateway, api_key, "/v1/chat/completions", json={"messages": MESSAGES} | body), param)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "dimensions": 2132100305278346363870778490880}, "dimensions"),
        ({"input": "x", "dimensions": 10**6}, "dimensions"),
        ({"input": [HUGE]}, "input.0"),
        ({"input": [-1]}, "input.0"),
        ({"input": [[1, 2, HUGE]]}, "input.0.2"),
        ({"input": [[1, -5]]}, "input.0.1"),
        ({"input": [[1] * 70_000]}, "input.0"),
        ({"input": ["x"] * 3000}, "input"),
        ({"input": "x", "user_tags": [0] * 100_000}, "user_tags"),
    ],
)
def test_embeddings_bounds(gateway: Gateway, api_key: str, body: dict[str, Any], param: str) -> None:
    _assert_400(_post(gateway, api_key, "/v1/embeddings", json=body), param)


def test_embeddings_dimensions_through_the_sdk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="tiny-embed", input="x", dimensions=2132100305278346363870778490880)
    assert caught.value.body["param"] == "dimensions"  # type: ignore[index]


def test_images_pass_through_values_are_bounded(gateway: Gateway, api_key: str) -> None:
    # `output_format` is a pass_through key of tiny-image: it would reach the worker as sent.
    _assert_400(_post(gateway, api_key, "/v1/images/generations", json={"prompt": "p", "output_format": HUGE}),
                "output_format")
    _assert_400(_post(gateway, api_key, "/v1/images/generations", json={"prompt": "p", "seed": 2**64}), "seed")


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "2"])
def test_multipart_temperature_must_be_finite_and_in_range(gateway: Gateway, api_key: str, value: str) -> None:
    response = _post(gateway, api_key, "/v1/audio/transcriptions", files={"file": ("a.wav", b"RIFF0000", "audio/wav")},
                     data={"temperature": value})
    _assert_400(response, "temperature")


def test_a_second_file_part_is_refused(gateway: Gateway, api_key: str) -> None:
    calls = workers.CALLS["transcribe"]
    response = _post(
        gateway, api_key, "/v1/audio/transcriptions",
        files=[("file", ("a.wav", b"RIFF0000", "audio/wav")), ("file", ("b.wav", b"RIFF1111", "audio/wav"))],
    )
    _assert_400(response, "file")
    assert response.json()["error"]["code"] == "duplicate_field"
    assert workers.CALLS["transcribe"] == calls


def test_a_repeated_text_field_is_refused(gateway: Gateway, api_key: str) -> None:
    response = _post(gateway, api_key, "/v1/audio/transcriptions",
                     files={"file": ("a.wav", b"RIFF0000", "audio/wav")},
                     data={"language": ["en", "de"]})
    _assert_400(response, "language")


def test_json_transcription_temperature_and_pass_through(gateway: Gateway, api_key: str) -> None:
    url = "http://127.0.0.1:9/clip.wav"
    _assert_400(_post(gateway, api_key, "/v1/audio/transcriptions", json={"audioUrl": url, "temperature": 1.5}),
                "temperature")
    _assert_400(_post(gateway, api_key, "/v1/audio/transcriptions", json={"audioUrl": url, "beam": HUGE}), "beam")


def test_ordinary_requests_still_pass(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny-chat", messages=[{"role": "user", "content": "bounded"}], max_tokens=64, seed=2**63 - 1,
        stop=["\n"], temperature=0.7,
    )
    assert reply.choices[0].message.content == "echo: bounded"
    vectors = client.embeddings.create(model="tiny-embed", input=[[1, 2, 3]], dimensions=8)
    assert vectors.data
