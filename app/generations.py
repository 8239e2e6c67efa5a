"""Finished requests' stats, kept for ``DRYAPI_RESULT_TTL_S`` under the response's ``id``.

What OpenRouter's ``GET /api/v1/generation?id=`` reads: model, the endpoint that served, tokens,
cost, latency. Written without making the response wait (batched SETs in a task), under the key
that made the request (ids are the worker's, two keys' may share one): only that key reads it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from weakref import WeakKeyDictionary

import msgspec
import structlog
from redis.exceptions import RedisError

from app.observability.timing import current_clock
from app.services import Services

log = structlog.get_logger("dryapi.generations")

# A response id as a client may send it back: bounded, so a key name stays sane.
MAX_ID_CHARS = 128


class Generation(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    owner: str
    surface: str
    model: str
    provider: str
    endpoint_id: str
    created: float  # unix seconds, when the request arrived
    latency_ms: int  # arrival to the last byte of the answer
    streamed: bool = False
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0  # USD, priced by the model's rules


_encode = msgspec.json.Encoder().encode
_decoder = msgspec.json.Decoder(Generation)


def started_at() -> tuple[float, float]:
    """(wall clock, perf counter) of the request's arrival: the request clock's, else now."""
    clock = current_clock()
    now, perf = time.time(), time.perf_counter()
    if clock is None:
        return now, perf
    return now - (perf - clock.started), clock.started


class _Writer:
    """Records wait here until a task writes all there are in one pipeline: under load many
    requests' records share one round trip."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.pending: list[Generation] = []
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            ttl = max(1, self.services.settings.result_ttl_s)
            try:
                async with self.services.redis.pipeline(transaction=False) as pipe:
                    for generation in batch:
                        pipe.set(self.services.keys.generation(generation.owner, generation.id),
                                 _encode(generation), ex=ttl)
                    await pipe.execute()
            except (RedisError, OSError) as exc:  # stats are best effort; the answers already left
                log.warning("generation_not_recorded", error_type=type(exc).__name__, count=len(batch))


# One writer per event loop (a process, or a test server's thread).
_writers: WeakKeyDictionary[asyncio.AbstractEventLoop, _Writer] = WeakKeyDictionary()


def save(services: Services, generation: Generation) -> None:
    """Record ``generation`` in the background."""
    if not generation.id or len(generation.id) > MAX_ID_CHARS:
        return
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None or writer.services is not services:
        writer = _writers[loop] = _Writer(services)
    writer.pending.append(generation)
    if writer.task is None or writer.task.done():
        writer.task = loop.create_task(writer.run())


def finished(
    services: Services, *, generation_id: str, owner: str, route: Any, usage: Any, cost: float | None,
    finish_reason: str | None = None, streamed: bool = False,
) -> None:
    """Record a finished request from its route and its (completed) ``usage``."""
    created, perf = started_at()
    found = usage if isinstance(usage, dict) else {}
    save(services, Generation(
        id=generation_id, owner=owner, surface=route.surface, model=route.public_model, provider=route.provider,
        endpoint_id=route.endpoint_id, created=created, latency_ms=round((time.perf_counter() - perf) * 1000),
        streamed=streamed, finish_reason=finish_reason, prompt_tokens=int(found.get("prompt_tokens") or 0),
        completion_tokens=int(found.get("completion_tokens") or 0), cost=cost or 0.0,
    ))


async def load(services: Services, generation_id: str, owner: str) -> Generation | None:
    """The record, if it exists and ``owner`` made it (another key's id reads as unknown)."""
    if not generation_id or len(generation_id) > MAX_ID_CHARS:
        return None
    raw = await services.redis.get(services.keys.generation(owner, generation_id))
    return None if raw is None else _decoder.decode(raw)
