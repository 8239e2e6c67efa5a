"""app/billing/batching.py on a redis-server of the test's own: calls made while one is in flight
go out together, each caller gets its own answer (or its own error), and a Redis that lost its
scripts is given them again."""

from __future__ import annotations

import asyncio

import pytest
import redis

from app import lua
from app.billing.batching import ScriptBatcher
from app.billing.ledger import Ledger
from app.store import Keys, create_redis
from tests.limits.conftest import RedisServer, spare_redis

__all__ = ["spare_redis"]  # the fixture, imported for these tests

pytestmark = pytest.mark.process  # starts redis-server

KEYS = Keys("batch:")


def _args(key_id: str, hold_id: str, amount: object) -> tuple[list[str], list[object]]:
    keys = [KEYS.balance(key_id), KEYS.hold(key_id, hold_id), KEYS.ledger(key_id), KEYS.pending_holds(key_id)]
    return keys, [amount, 1000, 86_400_000, hold_id, "job_id", hold_id]


def _evalsha_calls(url: str) -> int:
    stats = redis.Redis.from_url(url).info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_each_caller_gets_its_own_answer_and_its_own_error(spare_redis: RedisServer) -> None:
    client = create_redis(spare_redis.url)
    batcher = ScriptBatcher(client, lua.register(client, "ledger_hold"))
    calls = [_args("k", f"h{index}", 100) for index in range(12)]
    calls[5] = _args("k", "bad", "not-a-number")  # this one's script fails; the others must not
    results = await asyncio.gather(*(batcher(keys, args) for keys, args in calls), return_exceptions=True)
    assert isinstance(results[5], redis.ResponseError)
    others = [result for index, result in enumerate(results) if index != 5]
    # Ten of the eleven good holds of 100 fit the 1000 micro-USD balance; the eleventh is refused.
    assert sorted(int(result[0]) for result in others) == [0] + [1] * 10  # type: ignore[index]
    assert await client.get(KEYS.balance("k")) == b"0"
    await client.aclose()


async def test_parallel_holds_never_overdraw_through_batches(spare_redis: RedisServer) -> None:
    client = create_redis(spare_redis.url)
    ledger = Ledger(client, KEYS, initial_micro=10_000, ttl_days=1)
    await client.script_load(lua.source("ledger_hold"))  # so no call is a NOSCRIPT retry
    before = _evalsha_calls(spare_redis.url)
    holds = await asyncio.gather(
        *(ledger.hold("payer", f"job-{index}", 1000, task="t", model="m", quantities={}) for index in range(50))
    )
    assert sum(hold.held for hold in holds) == 10
    assert await ledger.balance("payer") == 0
    assert _evalsha_calls(spare_redis.url) - before == 50  # every hold ran its own script
    await client.aclose()


async def test_a_redis_that_lost_its_scripts_gets_them_again(spare_redis: RedisServer) -> None:
    client = create_redis(spare_redis.url)
    ledger = Ledger(client, KEYS, initial_micro=10_000, ttl_days=1)
    assert (await ledger.hold("reloaded", "first", 10, task="t", model="m", quantities={})).held
    await client.script_flush()
    holds = await asyncio.gather(
        *(ledger.hold("reloaded", f"job-{index}", 10, task="t", model="m", quantities={}) for index in range(8))
    )
    assert all(hold.held for hold in holds)
    assert await ledger.balance("reloaded") == 10_000 - 90
    await client.aclose()
