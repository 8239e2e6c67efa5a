"""The webhook outbox in Redis: every state change is one atomic Lua script (``app/lua/webhook_*.lua``).

Keys (``Keys.webhook_*``; all share the ``{webhook}`` hash tag):

- ``{webhook}:d:<id>`` hash: key_id, url, event, body (the raw bytes every attempt sends),
  attempt (index of the next attempt), attempts (made so far), state
  (pending | inflight | held | delivered | dead), owner (the lease token of the claimer),
  created, last_attempt_at, last_status, last_error, finished_at.
- ``{webhook}:due`` zset: id -> when its next attempt is due (Redis clock).
- ``{webhook}:inflight`` zset: id -> when its claimer's lease expires; an expired lease
  (the claimer died) puts the delivery back in ``due`` with the same attempt index.
- ``{webhook}:pending:<key_id>`` set: the key's deliveries not yet delivered or dead.
- ``{webhook}:held:<key_id>`` set: deliveries held while the key's breaker is open.
- ``{webhook}:breaker:<key_id>`` hash: failures (consecutive failed deliveries), paused, paused_at.

All times come from Redis's own clock (``TIME``), so replicas with skewed clocks agree
on due times and leases. Delivered records lose body and URL and expire after
``delivered_ttl_s``; dead ones are kept whole for ``dead_ttl_s`` for inspection.
"""

from __future__ import annotations

from typing import Any

import msgspec
import redis.asyncio as aioredis

from app import lua
from app.store import Keys


class Claimed(msgspec.Struct, frozen=True):
    id: str
    key_id: str
    url: str
    event: str
    body: bytes
    attempt: int
    token: str


class ClaimBatch(msgspec.Struct, frozen=True):
    now: float
    next_due: float | None
    claimed: list[Claimed]
    held: list[tuple[str, str]]  # (delivery id, key id)


class Finished(msgspec.Struct, frozen=True):
    recorded: bool  # False: the lease was lost (another claimer owns the delivery now)
    failures: int = 0
    tripped: bool = False


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class OutboxStorage:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self.due = keys.webhook_due
        self.inflight = keys.webhook_inflight
        self._enqueue = lua.register(redis, "webhook_enqueue")
        self._due = lua.register(redis, "webhook_due")
        self._claim = lua.register(redis, "webhook_claim")
        self._finish = lua.register(redis, "webhook_finish")
        self._release = lua.register(redis, "webhook_release")
        self._resume = lua.register(redis, "webhook_resume")

    def delivery_key(self, delivery_id: str) -> str:
        return self._keys.webhook_delivery(delivery_id)

    def breaker_key(self, key_id: str) -> str:
        return self._keys.webhook_breaker(key_id)

    def held_key(self, key_id: str) -> str:
        return self._keys.webhook_held(key_id)

    def pending_key(self, key_id: str) -> str:
        return self._keys.webhook_pending(key_id)

    async def enqueue(self, delivery_id: str, *, key_id: str, url: str, event: str, body: bytes, delay: float) -> None:
        await self._enqueue(
            keys=[self.delivery_key(delivery_id), self.due, self.pending_key(key_id)],
            args=[delivery_id, key_id, url, event, body, repr(float(delay))],
        )

    async def claim(self, limit: int, *, lease_s: float, token: str) -> ClaimBatch:
        """Take up to ``limit`` due deliveries under a lease of ``lease_s``.

        Three steps, because a Redis Cluster script may only touch keys it declares: read the
        candidates (and each one's key id), then claim them in one script that names every key
        it touches and checks each candidate again.
        """
        due, expired = await self._due(keys=[self.due, self.inflight], args=[limit])
        candidates = [(_text(i), "e") for i in expired] + [(_text(i), "d") for i in due]
        async with self._redis.pipeline(transaction=False) as pipe:
            for delivery_id, _ in candidates:
                pipe.hget(self.delivery_key(delivery_id), "key_id")
            owners = await pipe.execute()
        keys = [self.due, self.inflight]
        args: list[str | int] = [limit, repr(float(lease_s)), token]
        for (delivery_id, kind), owner in zip(candidates, owners, strict=True):
            key_id = _text(owner) if owner else ""
            keys += [self.delivery_key(delivery_id), self.breaker_key(key_id), self.held_key(key_id)]
            args += [delivery_id, kind]
        raw = await self._claim(keys=keys, args=args)
        now_raw, next_raw, claimed_raw, held_raw = raw
        claimed = [
            Claimed(
                id=_text(item[0]),
                key_id=_text(item[1]),
                url=_text(item[2]),
                event=_text(item[3]),
                body=bytes(item[4]),
                attempt=int(item[5]),
                token=token,
            )
            for item in claimed_raw
        ]
        held = [(_text(pair[0]), _text(pair[1])) for pair in held_raw]
        next_text = _text(next_raw)
        return ClaimBatch(
            now=float(_text(now_raw)),
            next_due=float(next_text) if next_text else None,
            claimed=claimed,
            held=held,
        )

    async def finish(
        self,
        item: Claimed,
        *,
        kind: str,
        delay: float = 0.0,
        status: int | None = None,
        error: str = "",
        threshold: int,
        ttl_s: int,
        attempted: bool = True,
    ) -> Finished:
        raw = await self._finish(
            keys=[
                self.delivery_key(item.id),
                self.inflight,
                self.due,
                self.pending_key(item.key_id),
                self.breaker_key(item.key_id),
            ],
            args=[
                item.id,
                item.token,
                kind,
                repr(float(delay)),
                "" if status is None else status,
                error,
                threshold,
                ttl_s,
                1 if attempted else 0,
            ],
        )
        code, failures, tripped = (int(x) for x in raw)
        return Finished(recorded=code >= 0, failures=failures, tripped=bool(tripped))

    async def release(self, item: Claimed, *, delay: float) -> bool:
        raw = await self._release(
            keys=[self.delivery_key(item.id), self.inflight, self.due],
            args=[item.id, item.token, repr(float(delay))],
        )
        return bool(raw)

    async def resume(self, key_id: str) -> bool:
        """Close the key's breaker and make its held deliveries due; True if it was open."""
        was_open = False
        for _ in range(10):  # a claim may hold one more while this runs: take those too
            held = [_text(i) for i in await self._redis.smembers(self.held_key(key_id))]
            opened, left = await self._resume(
                keys=[self.breaker_key(key_id), self.held_key(key_id), self.due]
                + [self.delivery_key(i) for i in held],
                args=held,
            )
            was_open = was_open or bool(opened)
            if not left:
                break
        return was_open

    async def status(self, key_id: str) -> dict[str, Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self.breaker_key(key_id), "paused", "failures")
            pipe.scard(self.pending_key(key_id))
            (paused, failures), pending = await pipe.execute()
        return {
            "paused": paused == b"1",
            "consecutive_failures": int(failures or 0),
            "pending": int(pending),
        }

    async def delivery(self, delivery_id: str) -> dict[str, Any] | None:
        fields = await self._redis.hgetall(self.delivery_key(delivery_id))
        if not fields:
            return None
        record: dict[str, Any] = {_text(k): _text(v) for k, v in fields.items() if k not in (b"body", b"url", b"owner")}
        record["id"] = delivery_id
        for name in ("attempt", "attempts", "last_status"):
            record[name] = int(record[name]) if record.get(name) else None
        return record
