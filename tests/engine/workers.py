"""A chat worker whose streamed answer is large: many small SSE events (worker-vllm dialect)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

PIECE = "0123456789abcdef" * 4  # 64 characters of content per event


def _event(delta: dict[str, Any], finish: str | None = None) -> str:
    chunk = {"id": "chatcmpl-big", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n"


async def big_chat(job: dict[str, Any]) -> AsyncIterator[str]:
    """``"big N"`` streams N events of 64 characters each, one event per yielded piece."""
    text = job["input"]["openai_input"]["messages"][-1]["content"]
    events = int(text.split()[1])
    yield _event({"role": "assistant", "content": ""})
    for _ in range(events):
        yield _event({"content": PIECE})
    yield _event({}, "stop")
    yield "data: [DONE]\n\n"
