"""The chat worker's request handling that needs no model: job parsing, tool plans, reading
tool calls back, logprob shapes (handlers/chat/schema.py, tools.py, openai_format.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from handlers.chat.engine import TokenLogprob
from handlers.chat.openai_format import chat_logprobs, completion_logprobs
from handlers.chat.schema import parse_job
from handlers.chat.tools import ToolPlan, read_tool_calls
from handlers.common.errors import InvalidInput

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
ADD = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}


def chat(**body: Any) -> Any:
    body = {"messages": [{"role": "user", "content": "hi"}], **body}
    return parse_job({"openai_route": "/v1/chat/completions", "openai_input": body})


def test_image_parts_become_template_placeholders_and_refs() -> None:
    content = [{"type": "text", "text": "read"}, {"type": "image_url", "image_url": {"url": "data:x"}},
               {"type": "image_url", "image_url": "https://example.com/p.png"}]  # fmt: skip
    job = chat(messages=[{"role": "user", "content": content}])
    assert job.messages[0]["content"] == [{"type": "text", "text": "read"}, {"type": "image"}, {"type": "image"}]
    assert [(r.param, r.url) for r in job.images] == [
        ("messages.0.content.1.image_url.url", "data:x"), ("messages.0.content.2.image_url.url", "https://example.com/p.png")
    ]
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    text_only = chat(messages=[{"role": "user", "content": parts}])
    assert text_only.messages[0]["content"] == "a\nb" and text_only.images == ()


def test_tool_plans_and_their_forced_schemas() -> None:
    assert chat(tools=[WEATHER]).tools.mode == "auto"
    assert chat(tools=[WEATHER], tool_choice="none").tools.active is False
    named = chat(tools=[WEATHER, ADD], tool_choice={"type": "function", "function": {"name": "add"}}).tools
    assert named.schema()["properties"]["name"] == {"type": "string", "enum": ["add"]}
    required = chat(tools=[WEATHER, ADD], tool_choice="required").tools.schema()
    assert [o["properties"]["name"]["enum"] for o in required["anyOf"]] == [["get_weather"], ["add"]]
    assert chat(tools=[WEATHER]).tools.schema() is None  # auto: the model writes freely


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools.0.function.name"),
        ({"response_format": {"type": "regex"}}, "response_format.type"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{"}}]}]},
         "messages.0.tool_calls.0.function.arguments"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
         "messages.0.content.0.image_url"),  # msgspec names the object missing `url`
    ],
)  # fmt: skip
def test_bad_fields_are_named(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        chat(**body)
    assert caught.value.param == param


def test_hermes_and_llama3_tool_calls_are_read_back() -> None:
    plan = ToolPlan([WEATHER, ADD], "auto")
    text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    content, calls = read_tool_calls(text, plan, "hermes")
    assert content == "Let me check." and [c["function"]["name"] for c in calls] == ["get_weather"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Oslo"}
    two = (
        '<tool_call>{"name": "add", "arguments": {"a": true}}</tool_call>'
        '<tool_call>{"name": "add", "arguments": "{}"}'  # the last one unclosed, as generation can end
    )
    content, calls = read_tool_calls(two, plan, "hermes")
    assert content is None and len(calls) == 2 and calls[0]["id"] != calls[1]["id"]
    content, calls = read_tool_calls('<|python_tag|>{"name": "add", "parameters": {"a": false}}', plan, "llama3_json")
    assert calls[0]["function"]["arguments"] == '{"a": false}'
    for not_a_call in ('<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>', "<tool_call>{broken", "plain"):
        assert read_tool_calls(not_a_call, plan, "hermes") == (not_a_call, [])
    forced = ToolPlan([WEATHER], "required")
    assert read_tool_calls('{"name": "get_weather", "arguments": {}}', forced, "none")[0] is None


def test_logprob_shapes() -> None:
    entries = [TokenLogprob("Hé", -0.25, (("Hé", -0.25), ("Ho", float("-inf")))), TokenLogprob("!", -1.0)]
    chat_shape = chat_logprobs(entries)
    assert chat_shape["refusal"] is None
    assert chat_shape["content"][0] == {
        "token": "Hé", "logprob": -0.25, "bytes": [72, 195, 169],
        "top_logprobs": [{"token": "Hé", "logprob": -0.25, "bytes": [72, 195, 169]},
                         {"token": "Ho", "logprob": -9999.0, "bytes": [72, 111]}],
    }  # fmt: skip
    legacy = completion_logprobs(entries, offset=10)
    assert legacy == {"tokens": ["Hé", "!"], "token_logprobs": [-0.25, -1.0],
                      "top_logprobs": [{"Hé": -0.25, "Ho": -9999.0}, {}], "text_offset": [10, 12]}  # fmt: skip
