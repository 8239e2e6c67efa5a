"""OpenAI response objects: ``chat.completion``, ``text_completion`` and their SSE chunks.

The handler yields these exactly as OpenAI (and worker-vllm) put them on the wire: one
JSON object for a sync call, ``data: {chunk}\\n\\n`` text pieces ending ``data: [DONE]``
for a stream.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec

from handlers.chat.schema import Route

DONE = "data: [DONE]\n\n"
_encode = msgspec.json.Encoder().encode


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def sse(event: dict[str, Any]) -> str:
    return f"data: {_encode(event).decode()}\n\n"


class ResponseBuilder:
    """Ids, timestamps and shapes shared by every object of one response."""

    def __init__(self, route: Route, model: str, prompt_tokens: int, include_usage: bool = False) -> None:
        self.chat = route == "chat"
        self.id = f"{'chatcmpl' if self.chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.include_usage = include_usage

    def completion(self, texts: list[str], finishes: list[str], completion_tokens: int) -> dict[str, Any]:
        choices: list[dict[str, Any]] = []
        for index, (text, finish) in enumerate(zip(texts, finishes, strict=True)):
            if self.chat:
                message = {"role": "assistant", "content": text}
                choices.append({"index": index, "message": message, "logprobs": None, "finish_reason": finish})
            else:
                choices.append({"index": index, "text": text, "logprobs": None, "finish_reason": finish})
        return {
            "id": self.id,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": usage(self.prompt_tokens, completion_tokens),
        }

    def _chunk(self, choices: list[dict[str, Any]]) -> str:
        event: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.include_usage:
            # OpenAI: with include_usage every chunk carries "usage": null until the last one.
            event["usage"] = None
        return sse(event)

    def role_chunk(self, index: int) -> str | None:
        """The opening chunk of a chat choice (completions have none)."""
        if not self.chat:
            return None
        delta = {"role": "assistant", "content": ""}
        return self._chunk([{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}])

    def text_chunk(self, index: int, text: str) -> str:
        if self.chat:
            choice = {"index": index, "delta": {"content": text}, "logprobs": None, "finish_reason": None}
        else:
            choice = {"index": index, "text": text, "logprobs": None, "finish_reason": None}
        return self._chunk([choice])

    def finish_chunk(self, index: int, finish_reason: str) -> str:
        if self.chat:
            choice = {"index": index, "delta": {}, "logprobs": None, "finish_reason": finish_reason}
        else:
            choice = {"index": index, "text": "", "logprobs": None, "finish_reason": finish_reason}
        return self._chunk([choice])

    def usage_chunk(self, completion_tokens: int) -> str:
        return sse(
            {
                "id": self.id,
                "object": "chat.completion.chunk" if self.chat else "text_completion",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage(self.prompt_tokens, completion_tokens),
            }
        )


def models_list(served_name: str) -> dict[str, Any]:
    """``GET /v1/models`` on the OpenAI route: the one model this worker serves."""
    model = {"id": served_name, "object": "model", "created": int(time.time()), "owned_by": "dryapi"}
    return {"object": "list", "data": [model]}
