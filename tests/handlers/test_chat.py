"""The chat handler on a tiny random model through the real transformers engine (CPU, offline)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.chat import handler as chat_handler
from handlers.chat.engine import ChatSettings, load_engine
from handlers.chat.handler import handler
from handlers.chat.stops import StopMatcher
from handlers.common.errors import decode_error
from tests.contracts.shape import assert_same_shape, load_contract
from tests.handlers.tiny_models import build_tiny_chat_model

ROUTE = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello world how are you"}]
CONTRACT = load_contract("chat")

pytestmark = pytest.mark.slow  # loads a real (tiny) model


@pytest.fixture(scope="module", autouse=True)
def tiny_chat_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = build_tiny_chat_model(tmp_path_factory.mktemp("tiny-chat"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("CHAT_MODEL", str(path))
        patch.setenv("CHAT_ENGINE", "auto")
        for name in ("CHAT_SERVED_MODEL_NAME", "MAX_CONCURRENCY", "CHAT_MAX_MODEL_LEN", "CHAT_DEFAULT_MAX_TOKENS"):
            patch.delenv(name, raising=False)
        chat_handler.unload_engine()
        yield path
        chat_handler.unload_engine()


@pytest.fixture(scope="module")
def tokenizer(tiny_chat_model: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_chat_model)


async def run(job_input: Any) -> list[Any]:
    return [item async for item in handler({"id": "job-1", "input": job_input})]


def chat(**body: Any) -> dict[str, Any]:
    body.setdefault("model", "tiny-chat")
    body.setdefault("messages", HELLO)
    return {"openai_route": ROUTE, "openai_input": body}


async def complete(**body: Any) -> dict[str, Any]:
    outputs = await run(chat(**body))
    assert len(outputs) == 1, outputs
    assert "error" not in outputs[0], outputs[0]
    result: dict[str, Any] = outputs[0]
    return result


def events(pieces: list[Any]) -> list[Any]:
    """Decode the SSE text pieces; ``[DONE]`` stays a string."""
    out: list[Any] = []
    for piece in pieces:
        assert isinstance(piece, str) and piece.startswith("data: ") and piece.endswith("\n\n"), piece
        data = piece[len("data: ") : -2]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def streamed_text(chunks: list[Any], index: int = 0) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content", "")
        for c in chunks
        if isinstance(c, dict) and c["choices"] and c["choices"][0]["index"] == index
    )


def error_of(outputs: list[Any]) -> dict[str, Any]:
    assert len(outputs) == 1 and isinstance(outputs[0], dict) and "error" in outputs[0], outputs
    error = decode_error(outputs[0])
    assert error is not None and set(error) == {"type", "code", "message", "param"}
    return error


# --- the contract fixture, run through the real handler ------------------------------------


TEXT_CASES = [c for c in CONTRACT["cases"] if "fixture_model" not in c]  # the others: vision, structured tests


@pytest.mark.parametrize("case", TEXT_CASES, ids=[c["name"] for c in TEXT_CASES])
async def test_contract_case(case: dict[str, Any]) -> None:
    outputs = await run(case["input"])
    if "error" in case:
        error = error_of(outputs)
        for key, value in case["error"].items():
            assert error[key] == value
        return
    example = case["output"]
    if isinstance(example, dict):
        assert len(outputs) == 1
        assert_same_shape(outputs[0], example)
        assert outputs[0]["object"] == example["object"]
        return
    actual, expected = events(outputs), events(example)
    assert actual[-1] == expected[-1] == "[DONE]"
    # Role chunk, content chunk, finish chunk and usage chunk each match their example.
    for position in (0, 1, -3, -2):
        assert_same_shape(actual[position], expected[position])
        assert actual[position]["usage"] is None or position == -2


# --- sync, streaming and their agreement ---------------------------------------------------


async def test_sync_output_shape() -> None:
    result = await complete(max_tokens=6, temperature=0)
    assert result["object"] == "chat.completion"
    assert result["id"].startswith("chatcmpl-")
    assert result["model"] == "tiny-chat"  # the requested name is echoed
    [choice] = result["choices"]
    assert choice["index"] == 0 and choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    usage = result["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_stream_order_with_usage() -> None:
    chunks = events(await run(chat(max_tokens=6, temperature=0, stream=True, stream_options={"include_usage": True})))
    role, *middle, finish, usage_chunk, done = chunks
    assert done == "[DONE]"
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert middle and all(set(c["choices"][0]["delta"]) == {"content"} for c in middle)
    assert finish["choices"][0]["delta"] == {} and finish["choices"][0]["finish_reason"] == "length"
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 6
    assert all(c["usage"] is None for c in [role, *middle, finish])
    assert len({c["id"] for c in chunks[:-1]}) == 1
    assert {c["object"] for c in chunks[:-1]} == {"chat.completion.chunk"}


async def test_stream_without_usage_has_no_usage_chunk() -> None:
    chunks = events(await run(chat(max_tokens=4, temperature=0, stream=True)))
    assert chunks[-1] == "[DONE]"
    assert all("usage" not in c and c["choices"] for c in chunks[:-1])


async def test_stream_text_equals_sync_text() -> None:
    body = {"max_tokens": 12, "temperature": 0, "seed": 5}
    sync = await complete(**body)
    chunks = events(await run(chat(stream=True, stream_options={"include_usage": True}, **body)))
    assert streamed_text(chunks) == sync["choices"][0]["message"]["content"]
    assert chunks[-2]["usage"] == sync["usage"]


# --- sampling options ----------------------------------------------------------------------


async def test_max_tokens_gives_finish_length() -> None:
    result = await complete(max_tokens=5, temperature=0)
    assert result["choices"][0]["finish_reason"] == "length"
    assert result["usage"]["completion_tokens"] == 5
    # max_completion_tokens is the newer name and wins over max_tokens.
    newer = await complete(max_tokens=9, max_completion_tokens=3, temperature=0.8, seed=1)
    assert newer["usage"]["completion_tokens"] <= 3


async def test_n_gives_n_choices() -> None:
    result = await complete(n=2, max_tokens=8, temperature=1.0, seed=11)
    assert [c["index"] for c in result["choices"]] == [0, 1]
    texts = [c["message"]["content"] for c in result["choices"]]
    assert texts[0] != texts[1]  # each choice samples on its own
    stream = events(await run(chat(n=2, max_tokens=8, temperature=1.0, seed=11, stream=True)))
    assert [streamed_text(stream, 0), streamed_text(stream, 1)] == texts
    assert sorted(c["choices"][0]["index"] for c in stream[:-1] if c["choices"][0]["finish_reason"]) == [0, 1]


async def test_stop_cuts_the_text() -> None:
    full = (await complete(max_tokens=12, temperature=0))["choices"][0]["message"]["content"]
    word = full.split()[2]
    expected = full[: full.index(word)]
    for stop in (word, [word, "never-generated"]):
        result = await complete(max_tokens=12, temperature=0, stop=stop)
        assert result["choices"][0]["message"]["content"] == expected
        assert result["choices"][0]["finish_reason"] == "stop"
    chunks = events(await run(chat(max_tokens=12, temperature=0, stop=word, stream=True)))
    assert streamed_text(chunks) == expected
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_seed_is_reproducible() -> None:
    def text(result: dict[str, Any]) -> str:
        return str(result["choices"][0]["message"]["content"])

    first = await complete(max_tokens=10, temperature=1.0, seed=42)
    again = await complete(max_tokens=10, temperature=1.0, seed=42)
    assert text(first) == text(again)
    others = {text(await complete(max_tokens=10, temperature=1.0, seed=s)) for s in (1, 2, 3)}
    assert len(others | {text(first)}) > 1


async def test_usage_is_counted_by_the_tokenizer(tokenizer: Any) -> None:
    result = await complete(max_tokens=7, temperature=0)
    rendered = tokenizer.apply_chat_template(HELLO, tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    content = result["choices"][0]["message"]["content"]
    assert result["usage"]["prompt_tokens"] == len(prompt_ids)
    assert result["usage"]["completion_tokens"] == len(tokenizer(content, add_special_tokens=False)["input_ids"])


async def test_unknown_openai_fields_are_ignored() -> None:
    extra = {"tools": [{"type": "function", "function": {"name": "f"}}], "user": "u1", "logit_bias": {}}
    result = await complete(max_tokens=3, temperature=0, **extra)
    assert result["choices"][0]["finish_reason"] == "length"


async def test_text_parts_developer_role_and_multi_turn() -> None:
    messages = [
        {"role": "developer", "content": "be short"},
        {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "world"}]},
        {"role": "assistant", "content": None},
        {"role": "user", "content": "again"},
    ]
    result = await complete(messages=messages, max_tokens=3, temperature=0)
    assert result["usage"]["completion_tokens"] == 3


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_input", "param", "code"),
    [
        ({"openai_route": ROUTE, "openai_input": {"model": "m"}}, "messages", "invalid_value"),
        (chat(messages=[]), "messages", "invalid_value"),
        (chat(messages=[{"role": "wizard", "content": "hi"}]), "messages.0.role", "invalid_value"),
        (chat(temperature="hot"), "temperature", "invalid_value"),
        (chat(temperature=2.5), "temperature", "invalid_value"),
        (chat(n=0), "n", "invalid_value"),
        (chat(stop=7), "stop", "invalid_value"),
        (chat(max_tokens=100_000), "max_tokens", "context_length_exceeded"),
        (chat(max_completion_tokens=100_000), "max_completion_tokens", "context_length_exceeded"),
        (  # an image for a text-only model: refused before anything is fetched
            chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
            "messages.0.content.0.image_url.url",
            "unsupported_content",
        ),
        (
            chat(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]),
            "messages.0.content.0.type",
            "unsupported_content",
        ),
        (chat(response_format={"type": "grammar"}), "response_format.type", "unsupported_parameter"),
        (chat(response_format={"type": "json_schema"}), "response_format.json_schema.schema", "invalid_value"),
        (
            chat(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 7}}}),
            "response_format.json_schema.schema",
            "invalid_schema",
        ),
        (chat(tool_choice="required"), "tool_choice", "invalid_value"),
        (
            chat(
                tools=[{"type": "function", "function": {"name": "f"}}],
                tool_choice={"type": "function", "function": {"name": "g"}},
            ),
            "tool_choice.function.name",
            "invalid_value",
        ),
        (chat(top_logprobs=3), "top_logprobs", "invalid_value"),
        (chat(top_logprobs=21, logprobs=True), "top_logprobs", "invalid_value"),
        ({"openai_route": "/v1/embeddings", "openai_input": {}}, "openai_route", "unsupported_route"),
        ({"sampling_params": {"max_tokens": 3}}, "messages", "invalid_value"),
        ({"messages": HELLO, "sampling_params": {"temperature": "x"}}, "sampling_params.temperature", "invalid_value"),
        ("not an object", "input", "invalid_value"),
    ],
)
async def test_bad_input_fails_naming_the_field(job_input: Any, param: str, code: str) -> None:
    error = error_of(await run(job_input))
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] == code


async def test_prompt_too_long_names_messages() -> None:
    long_messages = [{"role": "user", "content": "one two three four " * 200}]
    error = error_of(await run(chat(messages=long_messages)))
    assert (error["param"], error["code"]) == ("messages", "context_length_exceeded")


# --- worker-vllm native input and other routes ---------------------------------------------


async def test_native_worker_vllm_input() -> None:
    sampling = {"max_tokens": 6, "temperature": 0, "stop": None}
    [result] = await run({"messages": HELLO, "sampling_params": sampling})
    assert result["object"] == "chat.completion" and result["usage"]["completion_tokens"] == 6
    openai = await complete(max_tokens=6, temperature=0)
    assert result["choices"][0]["message"] == openai["choices"][0]["message"]
    chunks = events(await run({"messages": HELLO, "sampling_params": sampling, "stream": True}))
    assert chunks[-1] == "[DONE]" and streamed_text(chunks) == openai["choices"][0]["message"]["content"]


async def test_native_prompt_and_completions_route() -> None:
    [native] = await run({"prompt": "the quick brown fox", "sampling_params": {"max_tokens": 4, "temperature": 0}})
    assert native["object"] == "text_completion" and native["id"].startswith("cmpl-")
    assert isinstance(native["choices"][0]["text"], str)
    body = {"model": "tiny", "prompt": "the quick brown fox", "max_tokens": 4, "temperature": 0}
    [routed] = await run({"openai_route": "/v1/completions", "openai_input": body})
    assert routed["choices"][0]["text"] == native["choices"][0]["text"]
    stream = events(await run({"openai_route": "/v1/completions", "openai_input": {**body, "stream": True}}))
    assert "".join(c["choices"][0]["text"] for c in stream[:-1]) == routed["choices"][0]["text"]


async def test_models_route_lists_the_served_model(tiny_chat_model: Path) -> None:
    [listing] = await run({"openai_route": "/v1/models", "openai_input": {}})
    assert listing["object"] == "list" and listing["data"][0]["id"] == str(tiny_chat_model)


# --- worker behaviour ----------------------------------------------------------------------


async def test_engine_is_loaded_once_and_shared_by_concurrent_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    real_load = load_engine

    async def counting_load(settings: ChatSettings) -> Any:
        loads.append(settings.model)
        return await real_load(settings)

    monkeypatch.setattr(chat_handler, "load_engine", counting_load)
    chat_handler.unload_engine()
    results = await asyncio.gather(*(complete(max_tokens=5, temperature=0) for _ in range(3)))
    assert len(loads) == 1
    assert len({r["choices"][0]["message"]["content"] for r in results}) == 1
    loaded = await chat_handler.get_engine()
    assert loaded is await chat_handler.get_engine()
    assert loaded.engine.kind == "transformers"


async def test_closing_a_stream_early_frees_the_engine() -> None:
    stream = handler({"id": "job-2", "input": chat(max_tokens=40, temperature=0, stream=True)})
    assert (await anext(stream)).startswith("data: ")
    await anext(stream)
    await stream.aclose()  # the client went away: generation stops at its next token
    result = await asyncio.wait_for(complete(max_tokens=3, temperature=0), timeout=10)
    assert result["usage"]["completion_tokens"] == 3


async def test_prompts_and_outputs_are_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    secret = "paris capital france secret"
    with caplog.at_level(logging.DEBUG):
        result = await complete(messages=[{"role": "user", "content": secret}], max_tokens=4, temperature=0)
        await run(chat(messages=[{"role": "user", "content": secret}], max_tokens=10**6))
    assert secret not in caplog.text
    assert result["choices"][0]["message"]["content"] not in caplog.text


def test_cpu_never_imports_vllm() -> None:
    assert ChatSettings.from_env().engine_kind() == "transformers"
    assert ChatSettings.from_env().concurrency() == 1
    assert "vllm" not in sys.modules


def test_baked_model_directory_is_used_for_its_hub_id(tmp_path: Path) -> None:
    (tmp_path / ".dryapi-model").write_text("org/baked-model\n")
    env = {"CHAT_MODEL": "org/baked-model", "CHAT_BAKED_DIR": str(tmp_path)}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        assert ChatSettings.from_env().model_path() == str(tmp_path)
        patch.setenv("CHAT_MODEL", "org/other")
        assert ChatSettings.from_env().model_path() == "org/other"


@pytest.mark.parametrize(
    ("pieces", "emitted", "stopped"),
    [
        (["hello wor", "ld again"], "hello ", True),
        (["abc", "def"], "abcdef", False),
        (["ab", "c wo", "rx"], "abc worx", False),
        (["say ", "END", " more"], "say ", True),
    ],
)
def test_stop_matcher_across_pieces(pieces: list[str], emitted: str, stopped: bool) -> None:
    matcher = StopMatcher(("world", "END"))
    out = "".join(matcher.feed(p) for p in pieces) + matcher.flush()
    assert (out, matcher.stopped) == (emitted, stopped)


# --- the vLLM engine's mapping, against a stand-in for vllm (the real one needs a GPU) -----


class _FakeVLLM:
    """Just enough of vllm's API surface for VLLMEngine: params in, DELTA outputs out."""

    def __init__(self, finish: str = "length") -> None:
        self.finish = finish
        self.params: dict[str, Any] = {}
        self.prompt: Any = None

    def install(self, patch: pytest.MonkeyPatch) -> None:
        vllm = types.ModuleType("vllm")
        sampling = types.ModuleType("vllm.sampling_params")
        vllm.SamplingParams = lambda **kw: kw  # type: ignore[attr-defined]
        vllm.TokensPrompt = lambda **kw: kw  # type: ignore[attr-defined]
        sampling.RequestOutputKind = types.SimpleNamespace(DELTA="delta")  # type: ignore[attr-defined]
        patch.setitem(sys.modules, "vllm", vllm)
        patch.setitem(sys.modules, "vllm.sampling_params", sampling)

    async def generate(self, prompt: Any, params: dict[str, Any], request_id: str) -> Any:
        self.prompt, self.params = prompt, params
        for step in range(3):
            last = step == 2
            yield types.SimpleNamespace(
                outputs=[
                    types.SimpleNamespace(
                        index=i,
                        text=f"c{i}w{step} ",
                        token_ids=[7, 7] if last else [7],
                        finish_reason=self.finish if last else None,
                    )
                    for i in range(params["n"])
                ]
            )


async def test_vllm_engine_maps_options_and_streams_deltas(tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers.chat.engine_vllm import VLLMEngine

    fake = _FakeVLLM()
    fake.install(monkeypatch)
    engine = VLLMEngine(fake, tokenizer, 512, {"temperature": 0.7, "top_k": 20})
    loaded = chat_handler._Loaded(ChatSettings.from_env(), engine)
    monkeypatch.setattr(chat_handler, "_loaded", loaded)

    result = await complete(n=2, max_tokens=9, stop="zz", seed=3, presence_penalty=0.5)
    assert fake.params["n"] == 2 and fake.params["max_tokens"] == 9 and fake.params["stop"] == ["zz"]
    assert fake.params["seed"] == 3 and fake.params["output_kind"] == "delta"
    assert fake.params["temperature"] == 0.7 and fake.params["top_k"] == 20  # model defaults
    assert fake.params["presence_penalty"] == 0.5
    assert fake.prompt["prompt_token_ids"] and result["usage"]["prompt_tokens"] == len(fake.prompt["prompt_token_ids"])
    assert [c["message"]["content"] for c in result["choices"]] == ["c0w0 c0w1 c0w2 ", "c1w0 c1w1 c1w2 "]
    assert result["usage"]["completion_tokens"] == 8 and result["choices"][1]["finish_reason"] == "length"

    await complete(max_tokens=4, temperature=0)
    assert fake.params["temperature"] == 0.0 and "top_k" not in fake.params  # greedy drops truncation

    chunks = events(await run(chat(n=2, max_tokens=4, stream=True)))
    assert streamed_text(chunks, 1) == "c1w0 c1w1 c1w2 " and chunks[-1] == "[DONE]"

    fake.finish = "abort"
    error = error_of(await run(chat(max_tokens=4)))
    assert (error["type"], error["code"]) == ("server_error", "generation_failed")


async def test_vllm_engine_requested_without_vllm_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_ENGINE", "vllm")
    chat_handler.unload_engine()
    try:
        error = error_of(await run(chat(max_tokens=2)))
    finally:
        chat_handler.unload_engine()
    assert (error["type"], error["code"]) == ("server_error", "engine_unavailable")


async def test_a_model_that_cannot_load_fails_the_job_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAT_MODEL", str(tmp_path / "no-such-model"))
    monkeypatch.setenv("CHAT_ENGINE", "transformers")
    chat_handler.unload_engine()
    try:
        error = error_of(await run(chat(max_tokens=2)))
    finally:
        chat_handler.unload_engine()
    assert (error["type"], error["code"]) == ("server_error", "model_load_failed")
    assert "no-such-model" in error["message"]
