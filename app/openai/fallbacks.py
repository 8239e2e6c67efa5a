"""What the OpenAI-dialect routes share for ``models`` fallbacks (app/routing/fallback.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any, TypeVar

import msgspec

from app.billing import charge
from app.errors import UpstreamTimeout
from app.services import Services
from app.upstream.sse import SSEParser
from app.upstream.worker_errors import worker_error

T = TypeVar("T")


async def released_on_timeout(
    services: Services, key_id: str, billing: Mapping[str, Any] | None, work: Awaitable[T]
) -> T:
    """``charge.paid`` keeps a hold when the wait times out (a job is followed and settles); a
    passthrough call that timed out left no job, and the next model takes a hold of its own."""
    try:
        return await work
    except UpstreamTimeout:
        if billing is not None:
            await charge.release(services, key_id, billing)
        raise


async def opened_stream(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Waits for the worker's first SSE event before the client gets a byte: a worker that fails
    before any output (RunPod's stream answers 200, then an error event) raises here, while a
    fallback is still possible. Returns the stream with what was read put back in front."""
    parser = SSEParser()
    read: list[bytes] = []
    while True:
        piece = await anext(chunks, None)
        if piece is None:
            break
        read.append(piece)
        events = parser.feed(piece)
        if events:
            _raise_if_error(events[0])
            break

    async def replayed() -> AsyncIterator[bytes]:
        for piece in read:
            yield piece
        async for piece in chunks:
            yield piece

    return replayed()


def _raise_if_error(data: str) -> None:
    try:
        event: Any = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return
    if isinstance(event, dict) and event.get("error"):
        raise worker_error(event)
