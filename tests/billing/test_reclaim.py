"""Stale holds against a real Redis: a hold no job was attached to is refunded once, however many
replicas reclaim at the same time; a hold whose job was recorded, or that settled, never is."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from app.billing.ledger import STALE_NOTE, Ledger
from app.jobs.records import JobStore, new_record
from app.store import Keys, create_redis

INITIAL = 5_000_000


@pytest.fixture
async def keys(redis_prefix: str) -> Keys:
    return Keys(f"{redis_prefix}reclaim:")


@pytest.fixture
async def ledger(redis_url: str, keys: Keys) -> AsyncIterator[Ledger]:
    redis = create_redis(redis_url)
    yield Ledger(redis, keys, initial_micro=INITIAL, ttl_days=90)
    await redis.aclose()


async def _hold(ledger: Ledger, key_id: str, hold_id: str, amount: int = 1000) -> None:
    assert (await ledger.hold(key_id, hold_id, amount, task="txt2img", model="m", quantities={})).held


async def test_concurrent_reclaimers_refund_each_stale_hold_once(redis_url: str, keys: Keys, ledger: Ledger) -> None:
    key_id = uuid.uuid4().hex[:12]
    for index in range(40):
        await _hold(ledger, key_id, f"hold_{index}")
    assert await ledger.balance(key_id) == INITIAL - 40_000
    # Eight replicas, each with its own connection, reclaim at once, in batches smaller than the backlog.
    clients = [create_redis(redis_url) for _ in range(8)]
    replicas = [Ledger(client, keys, initial_micro=INITIAL, ttl_days=90) for client in clients]

    async def drain(replica: Ledger) -> int:
        total = 0
        while True:
            refunded, taken = await replica.reclaim_stale(key_id, 0.0, limit=7)
            total += refunded
            if taken == 0:
                return total

    counts = await asyncio.gather(*(drain(replica) for replica in replicas))
    for client in clients:
        await client.aclose()
    assert sum(counts) == 40
    assert await ledger.balance(key_id) == INITIAL
    refunds = [e for e in await ledger.entries(key_id) if e.kind == "refund"]
    assert len(refunds) == 40 and {e.job_id for e in refunds} == {f"hold_{i}" for i in range(40)}
    assert all(e.note == STALE_NOTE and e.amount == 0 and e.refunded == 1000 for e in refunds)
    assert await ledger.reclaim_stale(key_id, 0.0) == (0, 0)


async def test_a_recorded_job_or_a_settled_hold_is_not_reclaimed(
    redis_url: str, keys: Keys, ledger: Ledger
) -> None:
    key_id = uuid.uuid4().hex[:12]
    for hold_id in ("hold_started", "hold_settled", "hold_orphan"):
        await _hold(ledger, key_id, hold_id)
    redis = create_redis(redis_url)
    try:
        jobs = JobStore(redis, keys, retention_s=60)
        record = new_record(id="job-1", owner=key_id, surface="images", model="m", endpoint_id="e",
                            endpoint_url="http://127.0.0.1:1", options={"billing": {"hold": "hold_started"}})
        await jobs.save(record, ttl_s=60, follow=True)
        await redis.zrem(keys.sweep_lane, "job-1")
    finally:
        await redis.aclose()
    await ledger.settle(key_id, "hold_settled", 400)
    assert await ledger.pending_since([key_id, uuid.uuid4().hex], 0.0) == [key_id]
    assert await ledger.reclaim_stale(key_id, 0.0) == (1, 1)  # the orphan alone
    assert await ledger.held(key_id, "hold_started") == 1000
    assert await ledger.held(key_id, "hold_orphan") is None
    assert await ledger.balance(key_id) == INITIAL - 1000 - 400
    assert await ledger.pending_since([key_id], 0.0) == []


async def test_a_young_hold_waits_for_the_grace_period(ledger: Ledger) -> None:
    key_id = uuid.uuid4().hex[:12]
    await _hold(ledger, key_id, "hold_young")
    assert await ledger.pending_since([key_id], 60.0) == []
    assert await ledger.reclaim_stale(key_id, 60.0) == (0, 0)
    assert await ledger.held(key_id, "hold_young") == 1000


async def test_a_refused_hold_leaves_nothing_pending(ledger: Ledger) -> None:
    key_id = uuid.uuid4().hex[:12]
    assert not (await ledger.hold(key_id, "too_much", INITIAL + 1, task="t", model="m", quantities={})).held
    assert await ledger.pending_since([key_id], 0.0) == []


async def test_a_taken_hold_is_left_alone_for_its_lease(ledger: Ledger) -> None:
    """A replica that took a hold and died before refunding it: another takes it once the
    lease has run out, not before."""
    key_id = uuid.uuid4().hex[:12]
    await _hold(ledger, key_id, "hold_leased")
    taken = await ledger._claim_stale(keys=[ledger._keys.pending_holds(key_id)], args=[0, 10, 300])
    assert taken == [b"hold_leased"]  # taken, never refunded: its taker "died"
    assert await ledger.reclaim_stale(key_id, 0.0, lease_s=0.3) == (0, 0)
    await asyncio.sleep(0.4)
    assert await ledger.reclaim_stale(key_id, 0.0) == (1, 1)
    assert await ledger.balance(key_id) == INITIAL
