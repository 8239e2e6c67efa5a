"""Following jobs to a terminal state: one poller per job across every replica.

Followed jobs sit in a Redis sorted set scored by when they are next due. Any replica's
watcher loop takes a due job under a short Redis lease, polls RunPod once, and schedules the
next poll, so the job is polled at one poller's rate however many replicas run, and a dead
replica's jobs are picked up by the others. Unwatched jobs back off exponentially (this is
the sweeper that recovers lost callbacks); jobs with a WebSocket watcher are polled fast, through
``/stream`` for streamed chat jobs so watchers get chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from typing import Any

import structlog
from redis.exceptions import RedisError

from app.errors import GatewayError
from app.jobs.records import FIRST_POLL_S, TERMINAL_STATUSES, JobRecord, decode_record
from app.jobs.tracker import JobTracker
from app.services import Services

log = structlog.get_logger("dryapi.watcher")

_MAX_UNWATCHED_S = 30.0
WATCHED_INTERVAL_S = 0.25
_LEASE_MS = 15_000
_BATCH = 64
_RETRY_S = 5.0  # after a failed poll


class JobWatcher:
    def __init__(self, services: Services, tracker: JobTracker, *, concurrency: int = 32) -> None:
        self._services = services
        self._tracker = tracker
        self._active = services.jobs.active_key
        self._holder = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._slots = asyncio.Semaphore(concurrency)
        self.polls = 0  # upstream polls made by this process (tests and metrics read it)

    def _lease(self, job_id: str) -> str:
        return self._services.keys.custom("joblease", job_id)

    def _watched(self, job_id: str) -> str:
        return self._services.keys.custom("jobwatched", job_id)

    async def forget(self, job_id: str) -> None:
        await self._services.redis.zrem(self._active, job_id)

    async def watch(self, job_id: str) -> None:
        """A WebSocket is watching: poll fast, starting now. Call again within 30 s to keep it."""
        redis = self._services.redis
        await redis.set(self._watched(job_id), b"1", ex=30)
        await redis.zadd(self._active, {job_id: time.time()})

    async def run(self, stop: asyncio.Event) -> None:
        tasks: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            try:
                for job_id in await self._lease_due():
                    task = asyncio.create_task(self._poll(job_id))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            except Exception as exc:
                log.warning("watcher_loop_error", error_type=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.1)
        for task in tasks:
            task.cancel()

    async def _lease_due(self) -> list[str]:
        """Due jobs whose lease this process won (one round trip for the whole batch)."""
        redis = self._services.redis
        due = [
            raw.decode() if isinstance(raw, bytes) else str(raw)
            for raw in await redis.zrangebyscore(self._active, "-inf", time.time(), 0, _BATCH)
        ]
        if not due:
            return []
        async with redis.pipeline(transaction=False) as pipe:
            for job_id in due:
                pipe.set(self._lease(job_id), self._holder, nx=True, px=_LEASE_MS)
            won = await pipe.execute()
        return [job_id for job_id, leased in zip(due, won, strict=True) if leased]

    async def _poll(self, job_id: str) -> None:
        redis = self._services.redis
        try:
            async with self._slots:
                async with redis.pipeline(transaction=False) as pipe:
                    pipe.get(self._services.keys.job(job_id))
                    pipe.exists(self._tracker.result_key(job_id))
                    pipe.exists(self._watched(job_id))
                    raw, finished, watched = await pipe.execute()
                if not raw or finished:
                    next_poll = None  # expired, or finalised already (e.g. by the callback)
                else:
                    record = decode_record(raw)
                    body = await self.poll_once(record, watched=bool(watched))
                    done = body["status"] in TERMINAL_STATUSES
                    next_poll = None if done else time.time() + self._interval(record, bool(watched))
        except GatewayError as exc:
            log.info("watcher_poll_failed", job_id=job_id, code=exc.code)
            next_poll = time.time() + _RETRY_S
        except (RedisError, OSError) as exc:
            # The lease expires by itself; the job stays in the active set for the next round.
            log.warning("watcher_poll_failed", job_id=job_id, error_type=type(exc).__name__)
            return
        await self._reschedule(job_id, next_poll)

    async def _reschedule(self, job_id: str, at: float | None) -> None:
        """Next poll at ``at`` (None: stop following) and the lease released, in one round trip."""
        with contextlib.suppress(RedisError, OSError):
            async with self._services.redis.pipeline(transaction=False) as pipe:
                if at is None:
                    pipe.zrem(self._active, job_id)
                else:
                    pipe.zadd(self._active, {job_id: at})
                pipe.delete(self._lease(job_id))
                await pipe.execute()

    async def poll_once(self, record: JobRecord, *, watched: bool) -> dict[str, Any]:
        client = self._services.client
        api_key = self.api_key()
        self.polls += 1
        chunks: list[Any] | None = None
        if record.stream and watched:
            streamed = await client.stream(record.endpoint_url, api_key, record.id)
            chunks = [item.get("output") for item in streamed.get("stream") or [] if isinstance(item, dict)]
            if streamed.get("status") not in TERMINAL_STATUSES:
                raw = {"id": record.id, "status": streamed.get("status", record.status)}
                return await self._tracker.observe(record, raw, chunks=chunks)
            if chunks:
                await self._tracker.publish(record.id, {"id": record.id, "status": "IN_PROGRESS", "stream": chunks})
        raw = await client.status(record.endpoint_url, api_key, record.id)
        return await self._tracker.observe(record, raw)

    def api_key(self) -> str:
        return self._services.upstream_api_key()

    @staticmethod
    def _interval(record: JobRecord, watched: bool) -> float:
        if watched:
            return WATCHED_INTERVAL_S
        # Unwatched jobs are swept in case their callback is lost: the first poll comes after the
        # surface's base delay, then the gap doubles (it equals the job's age) up to the cap.
        base = FIRST_POLL_S.get(record.surface, 2.0)
        age = max(0.0, time.time() - record.created)
        return min(max(base, age), _MAX_UNWATCHED_S)
