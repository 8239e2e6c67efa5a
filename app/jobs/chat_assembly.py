"""A streamed chat job's pieces folded into one ``chat.completion``, in linear time and bounded.

RunPod keeps everything a streaming worker yields and hands it back as the job's output: a
list of raw SSE pieces (worker-vllm) or of chunk objects. The pieces are parsed as they
come (``SSEParser`` is linear however they are cut) and each choice's text is kept as a list
of parts joined once at the end, so no piece costs work in proportion to what came before.

Bound: a job whose stream passes ``max_bytes`` (``DRYAPI_STREAM_MAX_BYTES``) fails with
``output_too_large`` instead of being cut short: a truncated answer presented as complete is
worse than a clear failure, and the whole body would be kept in Redis and sent to every
watcher. Clients that need more stream the request synchronously.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from app.errors import UpstreamError
from app.upstream.sse import SSEParser

_decode = msgspec.json.decode
_encode = msgspec.json.encode


class OutputTooLarge(UpstreamError):
    default_code = "output_too_large"
    retryable = False


class _Choice:
    __slots__ = ("finish_reason", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish_reason: Any = None


class ChatAssembler:
    def __init__(self, public_model: str, *, max_bytes: int) -> None:
        self._model = public_model
        self._max_bytes = max_bytes
        self._size = 0
        self._parser = SSEParser()
        self._first: dict[str, Any] | None = None
        self._usage: Any = None
        self._choices: dict[int, _Choice] = {}

    def feed(self, piece: Any) -> None:
        """One piece of the stream: raw SSE text, or a decoded chunk object."""
        if isinstance(piece, dict):
            self._count(len(_encode(piece)))
            self._fold(piece)
            return
        text = piece if isinstance(piece, str) else str(piece)
        self._count(len(text))
        for data in self._parser.feed(text):
            self._event(data)

    def result(self) -> dict[str, Any]:
        for data in self._parser.close():
            self._event(data)
        first = self._first or {}
        return {
            "id": first.get("id", "chatcmpl-job"),
            "object": "chat.completion",
            "created": first.get("created", int(time.time())),
            "model": self._model,
            "choices": [
                {
                    "index": index,
                    "message": {"role": "assistant", "content": "".join(choice.parts)},
                    "finish_reason": choice.finish_reason,
                }
                for index, choice in sorted(self._choices.items())
            ],
            "usage": self._usage,
        }

    def _count(self, size: int) -> None:
        self._size += size
        if self._size > self._max_bytes:
            raise OutputTooLarge(
                f"The job's streamed output passed {self._max_bytes} bytes, the most the gateway assembles "
                "for an async job; stream the request synchronously to receive more"
            )

    def _event(self, data: str) -> None:
        if data.strip() == "[DONE]":
            return
        try:
            event = _decode(data)
        except msgspec.DecodeError:
            return
        if isinstance(event, dict):
            self._fold(event)

    def _fold(self, event: dict[str, Any]) -> None:
        if self._first is None:
            self._first = event
        if event.get("usage"):
            self._usage = event["usage"]
        for choice in event.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            index = int(choice.get("index") or 0)
            slot = self._choices.get(index)
            if slot is None:
                slot = self._choices[index] = _Choice()
            delta = choice.get("delta") or {}
            if isinstance(delta, dict) and delta.get("content"):
                slot.parts.append(str(delta["content"]))
            if choice.get("finish_reason"):
                slot.finish_reason = choice["finish_reason"]


def assemble_chat(pieces: list[Any], public_model: str, *, max_bytes: int) -> dict[str, Any]:
    """Fold streamed ``chat.completion.chunk`` events into one ``chat.completion``."""
    assembler = ChatAssembler(public_model, max_bytes=max_bytes)
    for piece in pieces:
        assembler.feed(piece)
    return assembler.result()
