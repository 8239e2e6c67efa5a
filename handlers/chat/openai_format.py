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

from handlers.chat.engine import TokenLogprob
from handlers.chat.schema import Route

DONE = "data: [DONE]\n\n"
# JSON has no -inf: a token the sampler could not pick (masked by top_p or a schema) gets
# OpenAI's floor value instead.
MIN_LOGPROB = -9999.0
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
        self._offsets: dict[int, int] = {}  # streamed characters per choice (completions' text_offset)

    def completion(
        self,
        texts: list[str],
        finishes: list[str],
        completion_tokens: int,
        tool_calls: list[list[dict[str, Any]] | None] | None = None,
        logprobs: list[list[TokenLogprob]] | None = None,
    ) -> dict[str, Any]:
        choices: list[dict[str, Any]] = []
        for index, (text, finish) in enumerate(zip(texts, finishes, strict=True)):
            entries = logprobs[index] if logprobs is not None else None
            if self.chat:
                calls = tool_calls[index] if tool_calls else None
                message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
                if calls:
                    message["tool_calls"] = calls
                choice = {"index": index, "message": message, "logprobs": self._logprobs(entries, 0)}
                choices.append(choice | {"finish_reason": finish})
            else:
                logprobs_ = self._logprobs(entries, 0)
                choices.append({"index": index, "text": text, "logprobs": logprobs_, "finish_reason": finish})
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

    def text_chunk(self, index: int, text: str, logprobs: list[TokenLogprob] | None = None) -> str:
        offset = self._offsets.get(index, 0)
        self._offsets[index] = offset + len(text)
        if self.chat:
            choice = {"index": index, "delta": {"content": text}, "logprobs": self._logprobs(logprobs, offset)}
        else:
            choice = {"index": index, "text": text, "logprobs": self._logprobs(logprobs, offset)}
        return self._chunk([choice | {"finish_reason": None}])

    def tool_chunk(self, index: int, calls: list[dict[str, Any]]) -> str:
        """Complete tool calls in one delta (each with its ``index``, as streamed calls carry)."""
        delta = {"tool_calls": [{"index": i, **call} for i, call in enumerate(calls)]}
        return self._chunk([{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}])

    def _logprobs(self, entries: list[TokenLogprob] | None, offset: int) -> dict[str, Any] | None:
        if entries is None:
            return None
        return chat_logprobs(entries) if self.chat else completion_logprobs(entries, offset)

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


def _logprob(value: float) -> float:
    return value if value > MIN_LOGPROB else MIN_LOGPROB


def chat_logprobs(entries: list[TokenLogprob]) -> dict[str, Any]:
    """Chat's shape: ``{"content": [{token, logprob, bytes, top_logprobs}], "refusal": null}``."""

    def item(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": _logprob(logprob), "bytes": list(token.encode("utf-8"))}

    content = [item(e.token, e.logprob) | {"top_logprobs": [item(t, lp) for t, lp in e.top]} for e in entries]
    return {"content": content, "refusal": None}


def completion_logprobs(entries: list[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """Completions' legacy shape: parallel lists, ``top_logprobs`` as token -> logprob maps."""
    offsets: list[int] = []
    for entry in entries:
        offsets.append(offset)
        offset += len(entry.token)
    return {
        "tokens": [e.token for e in entries],
        "token_logprobs": [_logprob(e.logprob) for e in entries],
        "top_logprobs": [{t: _logprob(lp) for t, lp in e.top} for e in entries],
        "text_offset": offsets,
    }
