"""Finished requests' stats, kept for ``DRYAPI_RESULT_TTL_S`` under the response's ``id``.

What OpenRouter's ``GET /api/v1/generation?id=`` reads: model, the endpoint that served, tokens,
cost, latency. Written without making the response wait (one SET in a task), under the key
that made the request (ids are the worker's, two keys' may share one): only that key reads it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

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
# Tasks in flight, held so none is collected before it has written.
_pending: set[asyncio.Task[None]] = set()


def started_at() -> tuple[float, float]:
    """(wall clock, perf counter) of the request's arrival: the request clock's, else now."""
    clock = current_clock()
    now, perf = time.time(), time.perf_counter()
    if clock is None:
        return now, perf
    return now - (perf - clock.started), clock.started


async def _write(services: Services, generation: Generation) -> None:
    try:
        await services.redis.set(services.keys.generation(generation.owner, generation.id), _encode(generation),
                                 ex=max(1, services.settings.result_ttl_s))
    except (RedisError, OSError) as exc:  # stats are best effort; the answer already left
        log.warning("generation_not_recorded", error_type=type(exc).__name__)


def save(services: Services, generation: Generation) -> None:
    """Record ``generation`` in the background."""
    if not generation.id or len(generation.id) > MAX_ID_CHARS:
        return
    task = asyncio.get_running_loop().create_task(_write(services, generation))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


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
