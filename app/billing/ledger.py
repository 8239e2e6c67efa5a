"""Per-key balances and their ledger in Redis, in integer micro-USD.

A job **holds** its quoted price when it is submitted (refused if the balance cannot cover it),
and **settles** once when it ends: charged what it measured, the rest given back; a failed or
cancelled job settles for nothing (a refund). Each step is one Lua script touching only the
key's own hash slot, so parallel submits can never overdraw and a settlement happens once
whichever replica (or retry) gets there first. Every step is kept in the key's ledger stream
for ``ttl_days``.

A hold also sits in its key's pending set until its job is recorded (``JobStore.save``) or it
settles, so a hold a dead gateway left behind is found and refunded (``reclaim_stale``). Holds
and settlements made in the same event-loop turn share one round trip (``ScriptBatcher``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import redis.asyncio as aioredis

from app import lua
from app.billing.batching import ScriptBatcher
from app.billing.pricing import usd
from app.store import Keys

_DAY_MS = 86_400_000
STALE_NOTE = "stale hold"  # a reclaimed hold's refund (no job was ever attached to it)


class Hold(msgspec.Struct, frozen=True):
    held: bool  # False: the balance cannot cover the amount
    balance: int  # micro-USD after the step
    repeated: bool = False  # this job already held (an idempotent retry)


class Settlement(msgspec.Struct, frozen=True):
    settled: bool  # False: nothing was held (already settled, or never held)
    balance: int
    refunded: int  # micro-USD given back (negative: charged beyond the hold)


class LedgerEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the stream id: milliseconds-sequence, so entries sort by time
    kind: str  # hold | settle | refund | topup
    amount: int
    balance: int
    refunded: int | None = None
    job_id: str | None = None
    task: str | None = None
    model: str | None = None
    quantities: str | None = None  # JSON of the quantities priced
    hold: str | None = None  # a settlement's hold id, where the job was named after its hold
    note: str | None = None

    @property
    def at_ms(self) -> int:
        return int(self.id.split("-", 1)[0])


def _fields(**fields: str | None) -> list[str]:
    flat: list[str] = []
    for name, value in fields.items():
        if value is not None:
            flat += [name, value]
    return flat


class Ledger:
    def __init__(
        self, redis: aioredis.Redis, keys: Keys, *, initial_micro: int | Callable[[], int], ttl_days: int
    ) -> None:
        """``initial_micro``: a new key's balance, or a function giving it (routing.yaml may be reloaded)."""
        self._redis = redis
        self._keys = keys
        self._initial_of = initial_micro if callable(initial_micro) else (lambda: initial_micro)
        self._ttl_ms = ttl_days * _DAY_MS
        self._hold = ScriptBatcher(redis, lua.register(redis, "ledger_hold"))
        self._settle = ScriptBatcher(redis, lua.register(redis, "ledger_settle"))
        self._topup = lua.register(redis, "ledger_topup")
        self._claim_stale = lua.register(redis, "ledger_claim_stale")

    async def balance(self, key_id: str) -> int:
        raw = await self._redis.get(self._keys.balance(key_id))
        return self._initial_of() if raw is None else int(raw)

    def _keys_of(self, key_id: str, hold_id: str) -> list[str]:
        keys = self._keys
        return [keys.balance(key_id), keys.hold(key_id, hold_id), keys.ledger(key_id), keys.pending_holds(key_id)]

    async def hold(
        self, key_id: str, job_id: str, amount: int, *, task: str, model: str, quantities: dict[str, float]
    ) -> Hold:
        if amount < 0:
            raise ValueError("a hold cannot be negative")
        entry = _fields(job_id=job_id, task=task, model=model, quantities=msgspec.json.encode(quantities).decode())
        status, balance = await self._hold(self._keys_of(key_id, job_id),
                                           [amount, self._initial_of(), self._ttl_ms, job_id, *entry])
        return Hold(held=status != 0, balance=int(balance), repeated=status == 2)

    async def held(self, key_id: str, job_id: str) -> int | None:
        raw = await self._redis.get(self._keys.hold(key_id, job_id))
        return None if raw is None else int(raw)

    async def settle(
        self, key_id: str, job_id: str, charge: int, *, quantities: dict[str, float] | None = None,
        named: str | None = None, note: str | None = None,
    ) -> Settlement:
        """Charge ``charge`` (0: a full refund) against the hold ``job_id``, once. ``named``: the job's
        own id when it was held under another (a hold precedes the job's id)."""
        if charge < 0:
            raise ValueError("a charge cannot be negative")
        measured = None if quantities is None else msgspec.json.encode(quantities).decode()
        entry = _fields(job_id=named or job_id, quantities=measured, hold=job_id if named else None, note=note)
        settled, balance, refunded = await self._settle(self._keys_of(key_id, job_id),
                                                        [charge, self._ttl_ms, job_id, *entry])
        return Settlement(settled=bool(settled), balance=int(balance), refunded=int(refunded))

    async def refund(self, key_id: str, job_id: str, *, note: str | None = None) -> Settlement:
        return await self.settle(key_id, job_id, 0, note=note)

    async def reclaim_stale(
        self, key_id: str, older_than_s: float, *, limit: int = 100, lease_s: float = 60.0
    ) -> tuple[int, int]:
        """Refund ``key_id``'s holds made over ``older_than_s`` ago that no job was attached to
        (their gateway died between holding and starting the job): (refunded, taken). Taking
        them is one atomic step, so among replicas one reclaims each, and the refund is the
        settle script's (the hold is its claim), so even a retaken one is refunded once."""
        taken = await self._claim_stale(keys=[self._keys.pending_holds(key_id)],
                                        args=[int(older_than_s * 1000), limit, int(lease_s * 1000)])
        ids = [raw.decode() if isinstance(raw, bytes) else str(raw) for raw in taken]
        done = await asyncio.gather(*(self.refund(key_id, hold_id, note=STALE_NOTE) for hold_id in ids))
        return sum(1 for settlement in done if settlement.settled), len(ids)

    async def pending_since(self, key_ids: list[str], older_than_s: float) -> list[str]:
        """Which of ``key_ids`` have a hold pending for over ``older_than_s`` (one round trip)."""
        cutoff_ms = int((time.time() - older_than_s) * 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key_id in key_ids:
                pipe.zcount(self._keys.pending_holds(key_id), "-inf", cutoff_ms)
            counts: list[int] = await pipe.execute()
        return [key_id for key_id, count in zip(key_ids, counts, strict=True) if count]

    async def topup(self, key_id: str, amount: int, *, note: str | None = None, opening: bool = False) -> int:
        """Add ``amount``; ``opening``: a new key's first balance, instead of the sign-up one."""
        if amount <= 0:
            raise ValueError("a top-up must be positive")
        keys = [self._keys.balance(key_id), self._keys.ledger(key_id)]
        initial = 0 if opening else self._initial_of()
        balance = await self._topup(keys=keys, args=[amount, initial, self._ttl_ms, *_fields(note=note)])
        return int(balance)

    async def open(self, key_id: str, amount: int) -> int:
        """Start a new key at ``amount`` (``keys create --balance``) rather than the sign-up balance."""
        if amount > 0:
            return await self.topup(key_id, amount, note="opening balance", opening=True)
        await self._redis.set(self._keys.balance(key_id), 0, nx=True)
        return await self.balance(key_id)

    async def entries(self, key_id: str, *, count: int = 1000) -> list[LedgerEntry]:
        """The newest ``count`` entries, oldest first."""
        rows: list[tuple[bytes, dict[bytes, bytes]]] = await self._redis.xrevrange(  # type: ignore[assignment]
            self._keys.ledger(key_id), count=count
        )
        entries = []
        for entry_id, raw in reversed(rows):
            fields: dict[str, str | int] = {k.decode(): v.decode() for k, v in raw.items()}
            for name in ("amount", "balance", "refunded"):
                if name in fields:
                    fields[name] = int(fields[name])
            entries.append(msgspec.convert({"id": entry_id.decode(), **fields}, LedgerEntry))
        return entries


def entry_view(entry: LedgerEntry) -> dict[str, Any]:
    """An entry as operators read it (CLI ``--json``, ``GET /admin/keys/{id}/ledger``): USD amounts,
    the time in ISO 8601, the quantities decoded."""
    view: dict[str, Any] = {"id": entry.id, "at": _iso(entry.at_ms), "kind": entry.kind,
                            "amount": usd(entry.amount), "balance": usd(entry.balance)}
    if entry.refunded is not None:
        view["refunded"] = usd(entry.refunded)
    for name in ("job_id", "hold", "task", "model", "note"):
        if getattr(entry, name) is not None:
            view[name] = getattr(entry, name)
    if entry.quantities:
        view["quantities"] = msgspec.json.decode(entry.quantities)
    return view


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
