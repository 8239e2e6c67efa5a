"""app/billing/ledger.py against a real Redis: holds never overdraw, settlements happen once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from app.billing.ledger import Ledger
from app.store import Keys, create_redis

INITIAL = 5_000_000  # 5 USD


@pytest.fixture
async def ledger(redis_url: str, redis_prefix: str) -> AsyncIterator[Ledger]:
    redis = create_redis(redis_url)
    yield Ledger(redis, Keys(f"{redis_prefix}ledger:"), initial_micro=INITIAL, ttl_days=90)
    await redis.aclose()


def _key() -> str:
    return uuid.uuid4().hex[:12]


async def test_a_new_key_starts_with_the_initial_balance(ledger: Ledger) -> None:
    assert await ledger.balance(_key()) == INITIAL


async def test_hold_then_settle_refunds_the_difference(ledger: Ledger) -> None:
    key = _key()
    hold = await ledger.hold(key, "job-1", 1360, task="txt2img", model="Flux1schnell", quantities={"steps": 4})
    assert hold.held and not hold.repeated and hold.balance == INITIAL - 1360
    assert await ledger.held(key, "job-1") == 1360
    settled = await ledger.settle(key, "job-1", 1000, quantities={"steps": 3})
    assert settled.settled and settled.refunded == 360 and settled.balance == INITIAL - 1000
    assert await ledger.held(key, "job-1") is None
    again = await ledger.settle(key, "job-1", 1000)
    assert not again.settled and again.balance == INITIAL - 1000


async def test_a_charge_above_the_hold_is_taken_too(ledger: Ledger) -> None:
    key = _key()
    await ledger.hold(key, "j", 1000, task="img2txt", model="m", quantities={})
    settled = await ledger.settle(key, "j", 1500)
    assert settled.refunded == -500 and settled.balance == INITIAL - 1500


async def test_refund_gives_back_everything(ledger: Ledger) -> None:
    key = _key()
    await ledger.hold(key, "j", 4000, task="txt2video", model="m", quantities={})
    assert (await ledger.refund(key, "j")).balance == INITIAL


async def test_holding_twice_for_one_job_holds_once(ledger: Ledger) -> None:
    key = _key()
    await ledger.hold(key, "j", 100, task="t", model="m", quantities={})
    again = await ledger.hold(key, "j", 100, task="t", model="m", quantities={})
    assert again.held and again.repeated and again.balance == INITIAL - 100


async def test_not_enough_balance_holds_nothing(ledger: Ledger) -> None:
    key = _key()
    hold = await ledger.hold(key, "j", INITIAL + 1, task="t", model="m", quantities={})
    assert not hold.held and hold.balance == INITIAL
    assert await ledger.held(key, "j") is None


async def test_parallel_holds_never_overdraw(ledger: Ledger) -> None:
    key = _key()
    price = INITIAL // 10  # the balance covers exactly 10
    holds = await asyncio.gather(
        *(ledger.hold(key, f"job-{i}", price, task="t", model="m", quantities={}) for i in range(50))
    )
    assert sum(h.held for h in holds) == 10
    assert await ledger.balance(key) == 0


async def test_parallel_settles_settle_once(ledger: Ledger) -> None:
    key = _key()
    await ledger.hold(key, "j", 1000, task="t", model="m", quantities={})
    results = await asyncio.gather(*(ledger.settle(key, "j", 400) for _ in range(20)))
    assert sum(r.settled for r in results) == 1
    assert await ledger.balance(key) == INITIAL - 400


async def test_topup_and_the_ledger_record_every_step(ledger: Ledger) -> None:
    key = _key()
    assert await ledger.topup(key, 2_000_000, note="invoice 7") == INITIAL + 2_000_000
    await ledger.hold(key, "j", 500, task="txt2audio", model="Kokoro", quantities={"characters": 100.0})
    await ledger.settle(key, "j", 300, quantities={"characters": 60.0})
    await ledger.hold(key, "k", 200, task="txt2img", model="Flux1schnell", quantities={})
    await ledger.refund(key, "k")
    entries = await ledger.entries(key)
    assert [e.kind for e in entries] == ["topup", "hold", "settle", "hold", "refund"]
    topup, hold, settle, _, refund = entries
    assert topup.note == "invoice 7" and topup.amount == 2_000_000
    assert hold.job_id == "j" and hold.task == "txt2audio" and hold.model == "Kokoro"
    assert hold.quantities == '{"characters":100.0}'
    assert settle.amount == 300 and settle.refunded == 200 and settle.balance == INITIAL + 2_000_000 - 300
    assert refund.refunded == 200 and refund.balance == INITIAL + 2_000_000 - 300
    assert [e.at_ms for e in entries] == sorted(e.at_ms for e in entries)


@pytest.mark.parametrize("amount", [-1])
async def test_negative_amounts_are_refused(ledger: Ledger, amount: int) -> None:
    with pytest.raises(ValueError):
        await ledger.hold(_key(), "j", amount, task="t", model="m", quantities={})
    with pytest.raises(ValueError):
        await ledger.settle(_key(), "j", amount)
    with pytest.raises(ValueError):
        await ledger.topup(_key(), 0)


async def test_the_embedded_backend_runs_the_same_scripts() -> None:
    redis = create_redis("memory://")
    ledger = Ledger(redis, Keys("mem:"), initial_micro=100, ttl_days=1)
    assert (await ledger.hold("k", "j", 60, task="t", model="m", quantities={})).held
    assert not (await ledger.hold("k", "j2", 60, task="t", model="m", quantities={})).held
    assert (await ledger.settle("k", "j", 10)).balance == 90
    assert [e.kind for e in await ledger.entries("k")] == ["hold", "settle"]
    # Parallel holds go out as pipelines (app/billing/batching.py); the embedded backend runs those too.
    holds = await asyncio.gather(*(ledger.hold("p", f"j{i}", 30, task="t", model="m", quantities={}) for i in range(5)))
    assert sum(hold.held for hold in holds) == 3 and await ledger.balance("p") == 10
    await redis.aclose()
