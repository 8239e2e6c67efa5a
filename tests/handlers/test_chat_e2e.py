"""The multimodal chat worker behind the gateway and the project's RunPod emulator.

Real worker code on a tiny Qwen2-VL built here (its template renders Hermes tools too): vision
chat, tool calls, JSON outputs, logprobs, and OCR through the native ``img2txt`` route (the
gateway stages the upload, the worker fetches it back by URL). One chat endpoint serves all
three public models: the emulator imports a handler once per process, so two chat models in
one test process would share one engine (the text-only refusal is tested on the handler in
tests/handlers/test_chat.py). Clients are the ``openai`` SDK and plain HTTP (native API).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from tests.gateway.conftest import Gateway, start_gateway, unique
from tests.handlers.tiny_image_models import image_bytes
from tests.handlers.tiny_vlm import build_tiny_vlm
from tests.support.servers import ServerThread

pytestmark = pytest.mark.slow  # loads real (tiny) models behind a real gateway

ROUTING = """
upstream: {{base_url: "{upstream}", api_key: ""}}
surfaces:
  chat:
    default_model: tiny
    sync_timeout_s: 120
    models:
      tiny: {{endpoint_id: vlm, base_url: "{upstream}"}}
      tiny-vl: {{endpoint_id: vlm, base_url: "{upstream}"}}
      Nanonets_Ocr_S_F16: {{endpoint_id: vlm, base_url: "{upstream}", upstream_model: nanonets/Nanonets-OCR-s,
                           inference_types: [img2txt], info: {{limits: {{max_width: 4096, max_height: 4096}}}},
                           pricing: {{usd: 0.00928, per: {{output_chars: 1000}}}}}}
"""
PAGE = image_bytes(120, 90)
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"enum": ["Oslo", "Rome"]}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    vlm_dir = build_tiny_vlm(tmp_path_factory.mktemp("e2e-vlm"), eos_weight=0.02)
    common = {"CHAT_ENGINE": "transformers", "MEDIA_FETCH_ALLOWLIST": "127.0.0.1"}  # staged uploads
    endpoints = {
        "vlm": EmulatorEndpoint(handler="handlers.chat.handler:handler", env={"CHAT_MODEL": str(vlm_dir), **common}),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in ("CHAT_MODEL", "CHAT_ENGINE", "MEDIA_FETCH_ALLOWLIST", "CHAT_TOOL_PARSER"):
            patch.delenv(name, raising=False)  # restored after the module: the handler reloads by env
        emulator = ServerThread(create_emulator_app(endpoints)).start()
        upstream = f"{emulator.url}/v2"
        gateway = start_gateway(
            upstream, redis_url, f"{redis_prefix}chat-e2e-{unique()}:", routing=ROUTING.format(upstream=upstream),
            media_allowlist=frozenset({"127.0.0.1"}),
        )
        try:
            yield gateway
        finally:
            gateway.server.stop()
            emulator.stop()


@pytest.fixture(scope="module")
def client(stack: Gateway) -> openai.OpenAI:
    return stack.client("open-mode", timeout=120)


def _image_part(data: bytes) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{base64.b64encode(data).decode()}"}}


def test_vision_chat_through_the_openai_sdk(client: openai.OpenAI) -> None:
    content: Any = [{"type": "text", "text": "What is in this picture?"}, _image_part(PAGE)]
    seen = client.chat.completions.create(
        model="tiny-vl", messages=[{"role": "user", "content": content}], max_tokens=5, temperature=0,
    )
    blind = client.chat.completions.create(
        model="tiny-vl", messages=[{"role": "user", "content": "What is in this picture?"}], max_tokens=5, temperature=0
    )
    assert seen.model == "tiny-vl" and isinstance(seen.choices[0].message.content, str)
    assert seen.usage is not None and blind.usage is not None
    assert seen.usage.prompt_tokens > blind.usage.prompt_tokens + 2  # the image's tokens are billed input


def test_corrupt_image_is_a_400_naming_the_part(client: openai.OpenAI) -> None:
    content: Any = [_image_part(PAGE[:50])]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="tiny-vl", messages=[{"role": "user", "content": content}])
    assert caught.value.param == "messages.0.content.0.image_url.url"


def test_tool_call_round_trip_through_the_openai_sdk(client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "weather in Oslo?"}]
    first = client.chat.completions.create(
        model="tiny", messages=messages, tools=[WEATHER], seed=3, max_tokens=200,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"] in ("Oslo", "Rome")
    # The client runs the tool and sends the result back with the assistant's call.
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "-3 C, snow"}]  # fmt: skip
    second = client.chat.completions.create(model="tiny", messages=messages, tools=[WEATHER], max_tokens=4)
    assert second.choices[0].finish_reason in ("stop", "length")
    assert second.usage is not None and first.usage is not None
    assert second.usage.prompt_tokens > first.usage.prompt_tokens


def test_streamed_tool_call_through_the_openai_sdk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER],
        tool_choice="required", seed=3, max_tokens=200, stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for delta_call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            entry = calls.setdefault(delta_call.index, {"name": "", "arguments": ""})
            entry["name"] += delta_call.function.name or "" if delta_call.function else ""
            entry["arguments"] += delta_call.function.arguments or "" if delta_call.function else ""
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert finish == "tool_calls" and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"])["city"] in ("Oslo", "Rome")


def test_json_schema_response_format_through_the_openai_sdk(client: openai.OpenAI) -> None:
    schema: Any = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    result = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "ok?"}], seed=1, max_tokens=200,
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
    )
    assert isinstance(json.loads(result.choices[0].message.content or "")["ok"], bool)


def test_logprobs_through_the_openai_sdk(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=3, temperature=0,
        logprobs=True, top_logprobs=2,
    )
    logprobs = result.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None and len(logprobs.content) == 3
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in logprobs.content)


def test_ocr_through_the_native_img2txt_route(stack: Gateway) -> None:
    key = stack.issue_key("ocr-tenant").key
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    with httpx.Client(base_url=f"{stack.url}/api/v1/client", headers=headers, timeout=60) as http:
        response = http.post("/img2txt", data={"model": "Nanonets_Ocr_S_F16", "language": "en"},
                             files={"image": ("page.png", PAGE, "image/png")})  # fmt: skip
        assert response.status_code == 200, response.text
        request_id = response.json()["data"]["request_id"]
        deadline = time.monotonic() + 120
        while True:
            data = http.get(f"/request-status/{request_id}").json()["data"]
            if data["status"] in ("done", "error") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert data["status"] == "done", data
    assert data["result_url"] is None and isinstance(data["result"], str) and data["result"]
