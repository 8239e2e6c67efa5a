"""Relaying a worker's SSE chat stream to the client, event by event.

The worker's bytes are re-framed from parsed events, so chunks split mid-event upstream
still reach the client as whole events; ``model`` becomes the public slug. Nothing may
raise once headers are sent, so failures become a final ``data: {"error": ...}`` frame;
so does a shutdown: a stream still open when the drain deadline comes ends with
``server_shutting_down`` (app/observability/shutdown.py) instead of being cut.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import msgspec

from app import generations
from app.errors import ErrorBody, ErrorDetail, GatewayError, Unavailable
from app.metrics import STREAM_FIRST_CHUNK
from app.observability.shutdown import Drain, current_drain
from app.observability.timing import current_clock
from app.openai.complete import ChunkFiller
from app.routing.resolver import Route
from app.services import Services
from app.upstream.sse import DONE, SSEParser
from app.upstream.worker_errors import worker_error

_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode


def error_frame(error: GatewayError, filler: ChunkFiller | None = None) -> bytes:
    """The stream's last frame when it fails: OpenAI's error body, or under /api/v1 OpenRouter's
    whole chunk with ``error`` and ``finish_reason: "error"`` (its SDK validates every chunk)."""
    if filler is not None and filler.openrouter:
        return b"data: " + _encode(filler.error_chunk(error)) + b"\n\n"
    body = ErrorBody(ErrorDetail(error.message, error.error_type, error.param, error.code))
    return b"data: " + _encode(body) + b"\n\n"


class _Relay:
    def __init__(self, filler: ChunkFiller) -> None:
        self.filler = filler
        self.finished = False

    def frame(self, data: str) -> bytes | None:
        if data.strip() == "[DONE]":
            self.finished = self.filler.done = True
            return DONE
        try:
            event: Any = _decode(data)
        except msgspec.DecodeError:
            return b"data: " + data.encode() + b"\n\n"
        if isinstance(event, dict):
            if event.get("error"):
                self.finished = True
                return error_frame(worker_error(event), self.filler)
            event = self.filler.fill(event)
            for choice in event["choices"]:
                if isinstance(choice, dict) and choice.get("finish_reason"):
                    self.filler.finish_reason = choice["finish_reason"]
        return b"data: " + _encode(event) + b"\n\n"


def shutting_down_frame(filler: ChunkFiller | None = None) -> bytes:
    return error_frame(
        Unavailable("The server is shutting down; retry the request", code="server_shutting_down", retry_after_s=1),
        filler,
    )


class _DrainGuard:
    """Ends the stream at the drain deadline: interrupts a wait for the next upstream piece.

    One watcher task per stream (not per chunk); it cancels the relaying task only while that
    task waits on upstream, never while it writes to the client.
    """

    def __init__(self, drain: Drain) -> None:
        self.fired = False
        self.waiting = False
        self._task = asyncio.current_task()
        self._watcher = asyncio.ensure_future(self._watch(drain))

    async def _watch(self, drain: Drain) -> None:
        await drain.streams_must_end()
        self.fired = True
        if self.waiting and self._task is not None:
            self._task.cancel()

    def swallow(self) -> bool:
        """After a CancelledError: True if it was ours (the stream ends with the shutdown frame)."""
        if self.fired and self._task is not None:
            self._task.uncancel()
            return True
        return False

    def close(self) -> None:
        self._watcher.cancel()


async def _next_piece(chunks: AsyncIterator[bytes], guard: _DrainGuard | None) -> bytes | None:
    if guard is None:
        return await anext(chunks, None)
    guard.waiting = True
    try:
        return await anext(chunks, None)
    finally:
        guard.waiting = False


async def relay_chat_stream(
    chunks: AsyncIterator[bytes], stack: AsyncExitStack, filler: ChunkFiller
) -> AsyncIterator[bytes]:
    """The worker's events as whole frames, each chunk completed by ``filler``."""
    relay = _Relay(filler)
    parser = SSEParser()
    drain = current_drain()
    guard = _DrainGuard(drain) if drain is not None else None
    clock = current_clock()
    started = clock.started if clock is not None else time.perf_counter()
    first = True
    try:
        while True:
            if guard is not None and guard.fired:
                yield shutting_down_frame(filler)
                return
            try:
                chunk = await _next_piece(chunks, guard)
            except asyncio.CancelledError:
                if guard is None or not guard.swallow():
                    raise
                yield shutting_down_frame(filler)
                return
            if chunk is None:
                break
            for data in parser.feed(chunk):
                frame = relay.frame(data)
                if frame is not None:
                    if first:
                        STREAM_FIRST_CHUNK.observe(time.perf_counter() - started)
                        first = False
                    yield frame
                if relay.finished:
                    return
        for data in parser.close():
            frame = relay.frame(data)
            if frame is not None:
                yield frame
            if relay.finished:
                return
        yield error_frame(GatewayError("The worker's stream ended before [DONE]", code="stream_incomplete"), filler)
    except GatewayError as exc:
        yield error_frame(exc, filler)
    except Exception as exc:
        yield error_frame(GatewayError(f"Upstream stream failed: {type(exc).__name__}", code="stream_failed"), filler)
    finally:
        if guard is not None:
            guard.close()
        await stack.aclose()


async def recorded_stream(
    frames: AsyncIterator[bytes], services: Services, key_id: str, route: Route, filler: ChunkFiller
) -> AsyncIterator[bytes]:
    """``frames``; once a stream has ended with ``[DONE]``, its generation record."""
    async for frame in frames:
        yield frame
    if filler.done:
        usage = filler.usage or {}
        cost = usage["cost"] if "cost" in usage else filler.pricing.cost(usage) if filler.pricing else None
        generations.finished(services, generation_id=filler.id, owner=key_id, route=route, usage=usage, cost=cost,
                             finish_reason=filler.finish_reason, streamed=True)
