"""The webhook outbox in Redis: every state change is one atomic Lua script.

Keys (under ``Keys.custom("webhook", ...)``):

- ``webhook:d:{id}`` hash: key_id, url, event, body (the raw bytes every attempt sends),
  attempt (index of the next attempt), attempts (made so far), state
  (pending | inflight | held | delivered | dead), owner (the lease token of the claimer),
  created, last_attempt_at, last_status, last_error, finished_at.
- ``webhook:due`` zset: id -> when its next attempt is due (Redis clock).
- ``webhook:inflight`` zset: id -> when its claimer's lease expires; an expired lease
  (the claimer died) puts the delivery back in ``due`` with the same attempt index.
- ``webhook:pending:{key_id}`` set: the key's deliveries not yet delivered or dead.
- ``webhook:held:{key_id}`` set: deliveries held while the key's breaker is open.
- ``webhook:breaker:{key_id}`` hash: failures (consecutive failed deliveries), paused, paused_at.

All times come from Redis's own clock (``TIME``), so replicas with skewed clocks agree
on due times and leases. Delivered records lose body and URL and expire after
``delivered_ttl_s``; dead ones are kept whole for ``dead_ttl_s`` for inspection.
"""

from __future__ import annotations

from typing import Any

import msgspec
import redis.asyncio as aioredis

from app.store import Keys

_NOW = """
local _t = redis.call('TIME')
local now = tonumber(_t[1]) + tonumber(_t[2]) / 1000000
"""

_ENQUEUE = (
    _NOW
    + """
redis.call('HSET', KEYS[1], 'key_id', ARGV[2], 'url', ARGV[3], 'event', ARGV[4], 'body', ARGV[5],
           'attempt', 0, 'attempts', 0, 'state', 'pending', 'created', now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""
)

# KEYS: due, inflight. ARGV: limit, lease_s, token, delivery prefix, breaker prefix, held prefix.
_CLAIM = (
    _NOW
    + """
local limit = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('HDEL', ARGV[4] .. id, 'owner')
end
local claimed, held = {}, {}
local rounds = 0
while #claimed < limit and rounds < 20 do
  rounds = rounds + 1
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit - #claimed)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[1], id)
    local dk = ARGV[4] .. id
    local f = redis.call('HMGET', dk, 'key_id', 'url', 'event', 'body', 'attempt')
    if f[1] and f[2] and f[4] then
      if redis.call('HGET', ARGV[5] .. f[1], 'paused') == '1' then
        redis.call('SADD', ARGV[6] .. f[1], id)
        redis.call('HSET', dk, 'state', 'held')
        held[#held + 1] = {id, f[1]}
      else
        redis.call('ZADD', KEYS[2], now + lease, id)
        redis.call('HSET', dk, 'owner', ARGV[3], 'state', 'inflight')
        claimed[#claimed + 1] = {id, f[1], f[2], f[3] or '', f[4], f[5] or '0'}
      end
    end
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {tostring(now), nxt[2] or '', claimed, held}
"""
)

# KEYS: delivery, inflight, due, pending set, breaker.
# ARGV: id, token, kind (delivered|retry|dead), delay, last_status, last_error, threshold, ttl, attempted.
_FINISH = (
    _NOW
    + """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] or not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return {-1, 0, 0}
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], 'owner')
local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0')
if ARGV[9] == '1' then
  redis.call('HSET', KEYS[1], 'attempts', attempt + 1, 'last_attempt_at', now,
             'last_status', ARGV[5], 'last_error', ARGV[6])
else
  redis.call('HSET', KEYS[1], 'last_error', ARGV[6])
end
local kind = ARGV[3]
if kind == 'delivered' then
  redis.call('HSET', KEYS[1], 'state', 'delivered', 'finished_at', now)
  redis.call('HDEL', KEYS[1], 'body', 'url')
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[8]))
  redis.call('SREM', KEYS[4], ARGV[1])
  redis.call('HSET', KEYS[5], 'failures', 0)
  return {0, 0, 0}
end
if kind == 'retry' then
  redis.call('HSET', KEYS[1], 'state', 'pending', 'attempt', attempt + 1)
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[1])
  return {1, 0, 0}
end
redis.call('HSET', KEYS[1], 'state', 'dead', 'finished_at', now)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[8]))
redis.call('SREM', KEYS[4], ARGV[1])
local failures = redis.call('HINCRBY', KEYS[5], 'failures', 1)
local tripped = 0
if failures >= tonumber(ARGV[7]) and redis.call('HGET', KEYS[5], 'paused') ~= '1' then
  redis.call('HSET', KEYS[5], 'paused', '1', 'paused_at', now)
  tripped = 1
end
return {2, failures, tripped}
"""
)

# KEYS: delivery, inflight, due. ARGV: id, token, delay. Gives a claim back without using up an attempt.
_RELEASE = (
    _NOW
    + """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] or not redis.call('ZREM', KEYS[2], ARGV[1]) then
  return 0
end
redis.call('HDEL', KEYS[1], 'owner')
redis.call('HSET', KEYS[1], 'state', 'pending')
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
return 1
"""
)

# KEYS: breaker, held, due. ARGV: delivery prefix.
_RESUME = (
    _NOW
    + """
local was = redis.call('HGET', KEYS[1], 'paused') == '1'
redis.call('HSET', KEYS[1], 'paused', '0', 'failures', 0)
local ids = redis.call('SMEMBERS', KEYS[2])
for _, id in ipairs(ids) do
  local dk = ARGV[1] .. id
  if redis.call('HGET', dk, 'state') == 'held' then
    redis.call('HSET', dk, 'state', 'pending')
    redis.call('ZADD', KEYS[3], now, id)
  end
end
redis.call('DEL', KEYS[2])
if was then return 1 end
return 0
"""
)


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
        self.due = keys.custom("webhook", "due")
        self.inflight = keys.custom("webhook", "inflight")
        self._delivery_prefix = keys.custom("webhook", "d", "")
        self._breaker_prefix = keys.custom("webhook", "breaker", "")
        self._held_prefix = keys.custom("webhook", "held", "")
        self._enqueue = redis.register_script(_ENQUEUE)
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._release = redis.register_script(_RELEASE)
        self._resume = redis.register_script(_RESUME)

    def delivery_key(self, delivery_id: str) -> str:
        return self._delivery_prefix + delivery_id

    def breaker_key(self, key_id: str) -> str:
        return self._breaker_prefix + key_id

    def held_key(self, key_id: str) -> str:
        return self._held_prefix + key_id

    def pending_key(self, key_id: str) -> str:
        return self._keys.custom("webhook", "pending", key_id)

    async def enqueue(self, delivery_id: str, *, key_id: str, url: str, event: str, body: bytes, delay: float) -> None:
        await self._enqueue(
            keys=[self.delivery_key(delivery_id), self.due, self.pending_key(key_id)],
            args=[delivery_id, key_id, url, event, body, repr(float(delay))],
        )

    async def claim(self, limit: int, *, lease_s: float, token: str) -> ClaimBatch:
        raw = await self._claim(
            keys=[self.due, self.inflight],
            args=[limit, repr(float(lease_s)), token, self._delivery_prefix, self._breaker_prefix, self._held_prefix],
        )
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
        raw = await self._resume(
            keys=[self.breaker_key(key_id), self.held_key(key_id), self.due],
            args=[self._delivery_prefix],
        )
        return bool(raw)

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
