"""Job records in Redis (``job:{id}``): who owns a job and where it runs.

Written for every job started with /run or /runsync, so the jobs routes can check ownership
and follow the job to a terminal state. Passthrough requests have no job and no record.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import msgspec
import redis.asyncio as aioredis

from app.store import Keys

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})


class JobRecord(msgspec.Struct, kw_only=True):
    id: str
    owner: str
    surface: str
    model: str
    endpoint_id: str
    endpoint_url: str
    created: int
    nonce: str
    status: str = "IN_QUEUE"
    webhook_url: str | None = None
    # How the client asked to see the result (e.g. a transcript's response_format).
    options: dict[str, Any] = {}
    stream: bool = False


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(JobRecord).decode


def decode_record(raw: bytes) -> JobRecord:
    return _decode(raw)


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def _hold_of(record: JobRecord) -> str | None:
    """The id of the balance hold this job pays from (``app/billing/charge.py``), if any."""
    billing = record.options.get("billing")
    return str(billing["hold"]) if isinstance(billing, dict) and "hold" in billing else None


def new_record(**fields: Any) -> JobRecord:
    fields.setdefault("created", int(time.time()))
    fields.setdefault("nonce", new_nonce())
    return JobRecord(**fields)


# First poll delay for a followed job, per surface (the watcher backs off from there).
FIRST_POLL_S = {"chat": 1.0, "embeddings": 1.0, "images": 2.0, "transcribe": 3.0}


def _first_poll_at(surface: str) -> float:
    return time.time() + FIRST_POLL_S.get(surface, 2.0)


class JobStore:
    """Job records and the set of jobs being followed."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, *, retention_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._retention_s = retention_s
        self.active_key = keys.sweep_lane

    async def save(self, record: JobRecord, *, ttl_s: int, follow: bool = False) -> None:
        """Store the record; ``follow`` also starts following the job, and a paid job's hold
        leaves the pending set (``app/billing/reclaim.py``), in the same round trip.

        A pipeline, not a script: the record and the sweep lane live in different hash slots
        on Redis Cluster, where one script may not touch both.
        """
        ttl = ttl_s + self._retention_s
        hold = _hold_of(record)
        if not follow and hold is None:
            await self._redis.set(self._keys.job(record.id), _encode(record), ex=ttl)
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._keys.job(record.id), _encode(record), ex=ttl)
            if follow:
                pipe.zadd(self.active_key, {record.id: _first_poll_at(record.surface)})
            if hold is not None:  # the job now settles its hold: no longer the reclaimer's
                pipe.zrem(self._keys.pending_holds(record.owner), hold)
            await pipe.execute()

    async def follow(self, job_id: str, surface: str) -> None:
        """Poll ``job_id`` until terminal, whoever else watches (the sweeper for lost callbacks)."""
        await self._redis.zadd(self.active_key, {job_id: _first_poll_at(surface)})

    async def get(self, job_id: str) -> JobRecord | None:
        raw = await self._redis.get(self._keys.job(job_id))
        return _decode(raw) if raw else None

    async def set_status(self, job_id: str, status: str) -> None:
        record = await self.get(job_id)
        if record is None or record.status == status:
            return
        record.status = status
        await self._redis.set(self._keys.job(job_id), _encode(record), keepttl=True)
