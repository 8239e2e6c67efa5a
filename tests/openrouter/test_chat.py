"""Chat and embeddings leave complete whatever the worker returned: the openrouter SDK's models
and the openai SDK's pydantic types validate them, with ``provider`` and ``usage.cost``."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.gateway.conftest import Gateway
from tests.openrouter.conftest import CHAT_MODEL, EMBED_MODEL, http, sdk

BARE = [{"role": "user", "content": "bare please"}]
FULL = [{"role": "user", "content": "hello there"}]
# The shipped prices: 0.00005 USD per 1,000 input tokens, 0.00008 per 1,000 output; a request is
# charged whole micro-dollars, rounded up. The bare worker reports 4 + 2 tokens.
BARE_COST = 0.000001


def _events(response: Any) -> list[dict[str, Any]]:
    lines = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_sdk_chat_send_validates_a_bare_worker_answer(billed: Gateway, billed_key: tuple[str, str]) -> None:
    with sdk(billed, billed_key[0]) as client:
        result = client.chat.send(model=CHAT_MODEL, messages=BARE)
    assert result.object == "chat.completion" and result.system_fingerprint is None
    assert result.model == CHAT_MODEL and result.id.startswith("chatcmpl-") and result.created > 0
    assert result.choices[0].message.content == "bare answer"
    assert result.choices[0].finish_reason == "stop" and result.choices[0].index == 0
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (4, 2, 6)
    assert result.usage.cost == BARE_COST  # billing is on: always priced


def test_raw_completion_validates_against_openai_and_names_the_provider(billed: Gateway,
                                                                          billed_key: tuple[str, str]) -> None:
    with http(billed, billed_key[0]) as client:
        bare = client.post("/chat/completions", json={"model": CHAT_MODEL, "messages": BARE}).json()
        full = client.post("/chat/completions", json={"model": CHAT_MODEL, "messages": FULL}).json()
    for body in (bare, full):
        ChatCompletion.model_validate(body, strict=False)
        assert body["provider"] == "chat-ep"  # the endpoint that served (its id: routing.yaml names none)
        assert set(body["usage"]) >= {"prompt_tokens", "completion_tokens", "total_tokens", "cost"}
    assert bare["choices"][0]["logprobs"] is None and bare["choices"][0]["message"]["role"] == "assistant"
    assert full["id"] == "chatcmpl-test"  # what the worker set is kept


def test_sdk_stream_chunks_are_complete(billed: Gateway, billed_key: tuple[str, str]) -> None:
    with sdk(billed, billed_key[0]) as client:
        stream = client.chat.send(model=CHAT_MODEL, messages=BARE, stream=True,
                                  stream_options={"include_usage": True})
        chunks = [event for event in stream]
    assert len(chunks) == 4
    assert len({chunk.id for chunk in chunks}) == 1  # one id for the stream, though the worker sent none
    assert all(chunk.object == "chat.completion.chunk" and chunk.model == CHAT_MODEL for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "bare answer"
    assert chunks[2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.cost == BARE_COST


def test_raw_stream_chunks_validate_against_openai(free: Gateway, free_key: tuple[str, str]) -> None:
    body = {"model": CHAT_MODEL, "messages": BARE, "stream": True, "usage": {"include": True}}
    with http(free, free_key[0]) as client, client.stream("POST", "/chat/completions", json=body) as response:
        events = _events(response)
    for event in events:
        ChatCompletionChunk.model_validate(event)
        assert event["system_fingerprint"] is None and event["provider"] == "chat-ep"
    # usage: {"include": true} asks for the usage chunk and its cost, billing off or not.
    assert events[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6, "cost": BARE_COST}


def test_cost_only_when_asked_with_billing_off(free: Gateway, free_key: tuple[str, str]) -> None:
    with http(free, free_key[0]) as client:
        plain = client.post("/chat/completions", json={"model": CHAT_MODEL, "messages": BARE}).json()
        asked = client.post("/chat/completions", json={"model": CHAT_MODEL, "messages": BARE,
                                                        "usage": {"include": True}}).json()
    assert "cost" not in plain["usage"]
    assert asked["usage"]["cost"] == BARE_COST
    # usage is OpenRouter's request field, not the worker's: the echo worker lists what reached it.
    assert "usage" not in (asked.get("system_fingerprint") or "")


def test_openai_sdk_on_api_v1_reads_complete_objects(free: Gateway, free_key: tuple[str, str]) -> None:
    client = openai.OpenAI(base_url=f"{free.url}/api/v1", api_key=free_key[0], max_retries=0)
    completion = client.chat.completions.create(model=CHAT_MODEL, messages=BARE)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "bare answer" and completion.usage is not None
    embedded = client.embeddings.create(model=EMBED_MODEL, input="bare")
    assert embedded.data[0].embedding == pytest.approx([0.6, 0.8]) and embedded.data[0].index == 0


def test_sdk_embeddings_validate_and_are_priced(billed: Gateway, billed_key: tuple[str, str]) -> None:
    with sdk(billed, billed_key[0]) as client:
        bare = client.embeddings.generate(model=EMBED_MODEL, input="bare")
        full = client.embeddings.generate(model=EMBED_MODEL, input=["one two three", "four"])
    assert bare.object == "list" and bare.data[0].object == "embedding" and bare.model == EMBED_MODEL
    assert bare.usage is not None and bare.usage.prompt_tokens == 0 and bare.usage.total_tokens == 0
    assert full.usage is not None and full.usage.prompt_tokens == 4
    assert full.usage.cost is not None and full.usage.cost > 0
    with http(billed, billed_key[0]) as raw:
        body = raw.post("/embeddings", json={"model": EMBED_MODEL, "input": "bare"}).json()
    CreateEmbeddingResponse.model_validate(body)
    assert body["provider"] == "emb-ep"


def test_v1_answers_are_completed_too(free: Gateway, free_key: tuple[str, str]) -> None:
    started = int(time.time())
    client = openai.OpenAI(base_url=f"{free.url}/v1", api_key=free_key[0], max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model=CHAT_MODEL, messages=BARE)  # type: ignore[arg-type]
    body = json.loads(raw.content)
    ChatCompletion.model_validate(body)
    assert body["system_fingerprint"] is None and body["created"] >= started and body["provider"] == "chat-ep"


def test_sdk_stream_failing_midway_ends_with_an_error_chunk(free: Gateway, free_key: tuple[str, str]) -> None:
    with sdk(free, free_key[0]) as client:
        chunks = list(client.chat.send(model=CHAT_MODEL, messages=[{"role": "user", "content": "break midway"}],
                                       stream=True))
    last = chunks[-1]
    assert last.error is not None and last.error.message == "GPU fell off" and last.error.code >= 500
    assert last.choices[0].finish_reason == "error" and last.id == chunks[0].id
    assert all(chunk.error is None for chunk in chunks[:-1])


def test_a_bad_usage_field_is_named(free: Gateway, free_key: tuple[str, str]) -> None:
    with http(free, free_key[0]) as client:
        wrong = client.post("/chat/completions", json={"model": CHAT_MODEL, "messages": BARE, "usage": True})
        inner = client.post("/embeddings", json={"model": EMBED_MODEL, "input": "x", "usage": {"include": "yes"}})
    assert wrong.status_code == 400 and wrong.json()["error"]["metadata"]["param"] == "usage"
    assert inner.status_code == 400 and inner.json()["error"]["metadata"]["param"] == "usage.include"
