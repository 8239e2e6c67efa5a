"""Workers that answer as little as a worker may: the gateway completes what leaves.

``bare ...`` as the last user message (or the embeddings input) gets a body with only the
content; anything else is answered by the gateway tests' full workers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from tests.gateway import workers


def _text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content")
    return content if isinstance(content, str) else ""


def _bare_stream(include_usage: bool) -> str:
    events: list[dict[str, Any]] = [
        {"choices": [{"delta": {"content": "bare"}}]},
        {"choices": [{"delta": {"content": " answer"}}]},
        {"choices": [{"delta": {}, "finish_reason": "stop"}]},
    ]
    if include_usage:
        events.append({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}})
    return "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"


async def chat(job: dict[str, Any]) -> AsyncIterator[Any]:
    body = job["input"]["openai_input"]
    if not _text(body).startswith("bare"):
        async for part in workers.chat(job):
            yield part
        return
    if body.get("stream"):
        yield _bare_stream(bool((body.get("stream_options") or {}).get("include_usage")))
        return
    yield {"choices": [{"message": {"content": "bare answer"}}], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}


def embeddings(job: dict[str, Any]) -> Any:
    body = job["input"]["openai_input"]
    if body.get("input") == "bare":
        return [{"data": [{"embedding": [0.6, 0.8]}]}]
    return workers.embeddings(job)
