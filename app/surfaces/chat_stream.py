"""Relaying a worker's SSE chat stream to the client, event by event.

The worker's bytes are re-framed from parsed events, so chunks split mid-event upstream
still reach the client as whole events; ``model`` becomes the public slug. Nothing may
raise once headers are sent, so failures become a final ``data: {"error": ...}`` frame.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import msgspec

from app.errors import ErrorBody, ErrorDetail, GatewayError
from app.upstream.sse import SSEParser
from app.upstream.worker_errors import worker_error

DONE = b"data: [DONE]\n\n"
_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode


def error_frame(error: GatewayError) -> bytes:
    body = ErrorBody(ErrorDetail(error.message, error.error_type, error.param, error.code))
    return b"data: " + _encode(body) + b"\n\n"


class _Relay:
    def __init__(self, public_model: str) -> None:
        self.public_model = public_model
        self.finished = False

    def frame(self, data: str) -> bytes | None:
        if data.strip() == "[DONE]":
            self.finished = True
            return DONE
        try:
            event: Any = _decode(data)
        except msgspec.DecodeError:
            return b"data: " + data.encode() + b"\n\n"
        if isinstance(event, dict):
            if event.get("error"):
                self.finished = True
                return error_frame(worker_error(event))
            if "model" in event:
                event["model"] = self.public_model
        return b"data: " + _encode(event) + b"\n\n"


async def relay_chat_stream(
    chunks: AsyncIterator[bytes], stack: AsyncExitStack, public_model: str
) -> AsyncIterator[bytes]:
    relay = _Relay(public_model)
    parser = SSEParser()
    try:
        async for chunk in chunks:
            for data in parser.feed(chunk):
                frame = relay.frame(data)
                if frame is not None:
                    yield frame
                if relay.finished:
                    return
        for data in parser.close():
            frame = relay.frame(data)
            if frame is not None:
                yield frame
            if relay.finished:
                return
        yield error_frame(GatewayError("The worker's stream ended before [DONE]", code="stream_incomplete"))
    except GatewayError as exc:
        yield error_frame(exc)
    except Exception as exc:
        yield error_frame(GatewayError(f"Upstream stream failed: {type(exc).__name__}", code="stream_failed"))
    finally:
        await stack.aclose()
