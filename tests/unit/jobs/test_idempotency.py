"""app/jobs/idempotency.py: one job per Idempotency-Key, duplicates get the first body (real Redis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from app.errors import InvalidRequest
from app.jobs import idempotency
from app.jobs.idempotency import Idempotency, IdempotencyConflict
from app.store import Keys


@pytest.fixture
async def claims(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[aioredis.Redis, Keys]]:
    client = aioredis.Redis.from_url(redis_url)
    yield client, Keys(f"{redis_prefix}idem-{uuid.uuid4().hex[:6]}:")
    await client.aclose()


def _claim(store: tuple[aioredis.Redis, Keys], header: str = "req-1", fingerprint: str = "f1",
           key_id: str = "key_a") -> Idempotency:
    redis, keys = store
    return Idempotency(redis, keys, key_id, header, fingerprint)


async def test_the_first_request_owns_the_key_and_a_repeat_gets_its_body(
    claims: tuple[aioredis.Redis, Keys],
) -> None:
    first = _claim(claims)
    assert await first.claim() is None
    await first.store(b'{"id":"job-1"}')
    assert await _claim(claims).claim() == b'{"id":"job-1"}'
    redis, _ = claims
    assert 0 < await redis.ttl(first._key) <= idempotency.TTL_S


async def test_keys_are_per_api_key(claims: tuple[aioredis.Redis, Keys]) -> None:
    first = _claim(claims, key_id="key_a")
    assert await first.claim() is None
    await first.store(b"a")
    assert await _claim(claims, key_id="key_b").claim() is None  # another tenant's same header


async def test_a_key_reused_with_other_content_is_refused(claims: tuple[aioredis.Redis, Keys]) -> None:
    assert await _claim(claims, fingerprint="f1").claim() is None
    with pytest.raises(InvalidRequest) as caught:
        await _claim(claims, fingerprint="f2").claim()
    assert caught.value.code == "idempotency_key_reused" and caught.value.param == "Idempotency-Key"


async def test_a_concurrent_duplicate_waits_for_the_first_body(claims: tuple[aioredis.Redis, Keys]) -> None:
    first = _claim(claims)
    assert await first.claim() is None
    waiting = asyncio.create_task(_claim(claims).claim())
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await first.store(b"body")
    assert await asyncio.wait_for(waiting, 2) == b"body"


async def test_a_released_key_is_claimed_by_the_waiting_duplicate(claims: tuple[aioredis.Redis, Keys]) -> None:
    first = _claim(claims)
    assert await first.claim() is None
    waiting = asyncio.create_task(_claim(claims).claim())
    await asyncio.sleep(0.1)
    await first.release()  # the first request failed before starting a job
    assert await asyncio.wait_for(waiting, 2) is None  # so the duplicate owns the key now


async def test_a_duplicate_gives_up_while_the_first_is_still_running(
    claims: tuple[aioredis.Redis, Keys], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency, "_WAIT_S", 0.2)  # the real wait is 10 s
    assert await _claim(claims).claim() is None
    with pytest.raises(IdempotencyConflict) as caught:
        await _claim(claims).claim()
    assert caught.value.status_code == 409 and caught.value.retryable
