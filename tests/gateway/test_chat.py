"""Chat completions through the real openai SDK: sync, streaming, async, errors."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.gateway import workers
from tests.gateway.conftest import Gateway


def test_sync_completion_uses_public_slug(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="tiny-chat", messages=[{"role": "user", "content": "hello there"}]
    )
    assert completion.object == "chat.completion"
    assert completion.model == "tiny-chat"
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_alias_resolves_and_unknown_fields_travel_upstream(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="tc",
        messages=[{"role": "user", "content": "hi"}],
        temperature=0.5,
        extra_body={"top_k": 5, "repetition_penalty": 1.1},
    )
    assert completion.model == "tiny-chat"
    # The worker lists the extra keys it received in system_fingerprint.
    assert completion.system_fingerprint == "repetition_penalty,temperature,top_k"


def test_default_model_when_omitted(gateway: Gateway, api_key: str) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "no model"}]},
        headers={"authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 200
    assert response.json()["model"] == "tiny-chat"


def test_stream_reassembles_events_split_mid_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="tiny-chat",
        messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" and c.model == "tiny-chat" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == "echo: one two three four"
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5


def test_stream_wire_format_ends_with_done(gateway: Gateway, api_key: str) -> None:
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": "tiny-chat", "stream": True, "messages": [{"role": "user", "content": "a b"}]},
        headers={"authorization": f"Bearer {api_key}"},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    events = [e for e in body.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"


def test_stream_error_midway_raises_in_sdk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="tiny-chat", messages=[{"role": "user", "content": "break midway"}], stream=True
    )
    with pytest.raises(openai.APIError, match="GPU fell off"):
        for _ in stream:
            pass


def test_validation_names_the_field(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="tiny-chat", messages=[])
    assert caught.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="tiny-chat", messages=[{"role": "wizard", "content": "x"}])  # type: ignore[list-item]
    assert caught.value.param == "messages.0.role"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": "x"}], temperature=7)
    assert caught.value.param == "temperature"


def test_handler_invalid_request_becomes_400_with_its_param(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": "fail"}])
    assert caught.value.param == "messages.0.content"
    assert "cannot do that" in caught.value.message


def test_worker_crash_is_502_and_not_retried(gateway: Gateway, api_key: str) -> None:
    client = gateway.client(api_key, max_retries=2)
    before = workers.CALLS["chat"]
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": "crash"}])
    assert caught.value.status_code == 502
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "worker exploded" in caught.value.message
    assert workers.CALLS["chat"] - before == 1


def test_async_chat_with_stream_is_enqueued(gateway: Gateway, api_key: str) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "tc", "stream": True, "messages": [{"role": "user", "content": "later"}]},
        headers={"authorization": f"Bearer {api_key}", "prefer": "respond-async"},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["object"] == "chat.completion.enqueue"
    assert body["model"] == "tiny-chat"
    assert response.headers["location"] == f"/v1/jobs/chat/{body['id']}"
