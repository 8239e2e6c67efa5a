"""The vLLM engine's mapping of requests onto vLLM's API, against a stand-in for vLLM.

vLLM needs a GPU, so its request surface (``SamplingParams``, ``StructuredOutputsParams``,
``TokensPrompt``, ``AsyncLLM.generate``'s delta outputs) is replaced by recording stand-ins
with the same names and fields. What is checked is this worker's code: JSON constraints
become ``structured_outputs``, logprobs are asked for and read back into OpenAI's shape,
images go to vLLM decoded (never as URLs) with one placeholder each, and usage counts
the image's tokens.
"""

from __future__ import annotations

import base64
import importlib.machinery
import sys
import types
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from handlers.chat import handler as chat_handler
from handlers.chat.engine import ChatSettings
from handlers.chat.handler import handler
from tests.handlers.tiny_image_models import image_bytes
from tests.handlers.tiny_vlm import build_tiny_vlm

pytestmark = pytest.mark.slow  # builds a tiny model for its tokenizer and image processor


@dataclass
class StructuredOutputsParams:
    json: Any = None
    json_object: bool = False


@dataclass
class SamplingParams:
    n: int = 1
    max_tokens: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __init__(self, **kwargs: Any) -> None:
        self.n, self.max_tokens, self.kwargs = kwargs.pop("n", 1), kwargs.pop("max_tokens", None), kwargs


class FakeAsyncLLM:
    """Answers every request with two tokens, each with its logprobs map."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.requests: list[tuple[Any, SamplingParams]] = []

    async def generate(self, prompt: Any, params: SamplingParams, request_id: str) -> AsyncIterator[Any]:
        self.requests.append((prompt, params))
        ids = self.tokenizer.encode("{}", add_special_tokens=False)
        for step, token in enumerate(ids):
            ranked = {token: types.SimpleNamespace(logprob=-0.5, rank=1, decoded_token=self.tokenizer.decode([token]))}
            ranked[token + 1] = types.SimpleNamespace(logprob=-1.5, rank=2, decoded_token="x")
            last = step == len(ids) - 1
            choice = types.SimpleNamespace(index=0, text=self.tokenizer.decode([token]), token_ids=[token],
                                           finish_reason="stop" if last else None, logprobs=[ranked])  # fmt: skip
            yield types.SimpleNamespace(outputs=[choice])


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_vlm(tmp_path_factory.mktemp("vllm-mapping"))


@pytest.fixture
def engine(vlm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAsyncLLM]:
    from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

    from handlers.chat.engine_vllm import VLLMEngine
    from handlers.chat.vision import image_token_id

    vllm = types.ModuleType("vllm")
    vllm.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    vllm.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    vllm.TokensPrompt = dict  # type: ignore[attr-defined]
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.StructuredOutputsParams = StructuredOutputsParams  # type: ignore[attr-defined]
    sampling.RequestOutputKind = types.SimpleNamespace(DELTA="delta")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling)
    tokenizer = AutoTokenizer.from_pretrained(vlm_dir)
    fake = FakeAsyncLLM(tokenizer)
    processor = AutoImageProcessor.from_pretrained(vlm_dir)  # type: ignore[no-untyped-call]
    token = image_token_id(tokenizer, AutoConfig.from_pretrained(vlm_dir))
    settings = ChatSettings.from_env()
    chat_handler._loaded = chat_handler._Loaded(settings, VLLMEngine(fake, tokenizer, 4096, {}, processor, token))
    try:
        yield fake
    finally:
        chat_handler.unload_engine()


async def run(body: dict[str, Any]) -> dict[str, Any]:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body}
    outputs = [o async for o in handler({"id": "j", "input": {"openai_route": "/v1/chat/completions",
                                                              "openai_input": body}})]  # fmt: skip
    assert len(outputs) == 1 and "error" not in outputs[0], outputs
    result: dict[str, Any] = outputs[0]
    return result


async def test_json_schema_becomes_structured_outputs(engine: FakeAsyncLLM) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    await run({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
    await run({"response_format": {"type": "json_object"}})
    first, second = (params.kwargs["structured_outputs"] for _, params in engine.requests)
    assert first == StructuredOutputsParams(json=schema) and second == StructuredOutputsParams(json_object=True)


async def test_forced_tool_call_is_a_structured_output_read_back_as_a_call(engine: FakeAsyncLLM) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    result = await run({"tools": [tool], "tool_choice": "required"})
    constraint = engine.requests[0][1].kwargs["structured_outputs"].json
    assert constraint["properties"]["name"] == {"type": "string", "enum": ["f"]}
    # The stand-in answers "{}": not a call (no name), so it stays text: never a half call.
    assert result["choices"][0]["finish_reason"] == "stop" and result["choices"][0]["message"]["content"] == "{}"


async def test_logprobs_are_asked_for_and_read_back(engine: FakeAsyncLLM) -> None:
    result = await run({"logprobs": True, "top_logprobs": 1})
    assert engine.requests[0][1].kwargs["logprobs"] == 1
    content = result["choices"][0]["logprobs"]["content"]
    assert [e["logprob"] for e in content] == [-0.5, -0.5]
    assert all(len(e["top_logprobs"]) == 1 and e["top_logprobs"][0]["logprob"] == -0.5 for e in content)


async def test_images_reach_vllm_decoded_with_one_placeholder_each(engine: FakeAsyncLLM) -> None:
    png = "data:image/png;base64," + base64.b64encode(image_bytes(80, 60)).decode()
    text_only = await run({})
    result = await run({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": png}}]}]})  # fmt: skip
    prompt, _ = engine.requests[1]
    (image,) = prompt["multi_modal_data"]["image"]
    assert image.size == (80, 60) and image.mode == "RGB"
    pad = engine.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert prompt["prompt_token_ids"].count(pad) == 1  # vLLM expands it itself
    assert result["usage"]["prompt_tokens"] > text_only["usage"]["prompt_tokens"] + 2
