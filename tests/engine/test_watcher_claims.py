"""app/lua/claim_due_jobs.lua against a real Redis: a due job is taken by exactly one caller."""

from __future__ import annotations

import asyncio
import time
import uuid

from app import lua
from app.store import Keys, create_redis


async def test_one_taker_per_due_job_and_the_lease_returns_it(redis_url: str, redis_prefix: str) -> None:
    redis = create_redis(redis_url)
    keys = Keys(f"{redis_prefix}claims-{uuid.uuid4().hex[:6]}:")
    claim = lua.register(redis, "claim_due_jobs")
    lanes = [keys.fast_lane, keys.sweep_lane]
    try:
        now = time.time()
        await redis.zadd(keys.fast_lane, {"watched": now - 1})
        await redis.zadd(keys.sweep_lane, {"watched": now - 1, "swept": now - 1, "later": now + 60})

        async def take(at: float) -> tuple[int, list[bytes]]:
            from_fast, taken = await claim(keys=lanes, args=[repr(at), 64, 64, 15.0])
            return int(from_fast), list(taken)

        results = await asyncio.gather(*(take(now) for _ in range(20)))  # twenty replicas at once
        winners = [r for r in results if r[1]]
        assert winners == [(1, [b"watched", b"swept"])]  # the watched job once, from its fast lane only
        assert await take(now + 10) == (0, [])  # leased: not due to anyone
        assert await take(now + 16) == (1, [b"watched", b"swept"])  # the taker died: due again
    finally:
        await redis.delete(*lanes)
        await redis.aclose()
