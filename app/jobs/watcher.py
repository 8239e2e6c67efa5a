"""Following jobs to a terminal state: one poller per job across every replica.

Followed jobs sit in a Redis sorted set scored by when they are next due. Any replica's
watcher loop takes a due job under a short Redis lease, polls RunPod once, and schedules the
next poll, so the job is polled at one poller's rate however many replicas run, and a dead
replica's jobs are picked up by the others. Unwatched jobs back off (this is the sweeper
that recovers lost callbacks); jobs with a WebSocket watcher are polled fast, through
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
from app.jobs.records import FIRST_POLL_S, TERMINAL_STATUSES, JobRecord
from app.jobs.tracker import JobTracker
from app.services import Services

log = structlog.get_logger("dryapi.watcher")

_MAX_UNWATCHED_S = 30.0
WATCHED_INTERVAL_S = 0.25
_LEASE_MS = 15_000
_BATCH = 64


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
                due = await self._services.redis.zrangebyscore(self._active, "-inf", time.time(), 0, _BATCH)
                for raw_id in due:
                    job_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                    if await self._services.redis.set(self._lease(job_id), self._holder, nx=True, px=_LEASE_MS):
                        task = asyncio.create_task(self._poll(job_id))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
            except Exception as exc:
                log.warning("watcher_loop_error", error_type=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.1)
        for task in tasks:
            task.cancel()

    async def _poll(self, job_id: str) -> None:
        redis = self._services.redis
        try:
            async with self._slots:
                record = await self._services.jobs.get(job_id)
                if record is None or await self._tracker.stored_result(job_id) is not None:
                    await self.forget(job_id)
                    return
                watched = bool(await redis.exists(self._watched(job_id)))
                body = await self.poll_once(record, watched=watched)
                if body["status"] in TERMINAL_STATUSES:
                    await self.forget(job_id)
                else:
                    await redis.zadd(self._active, {job_id: time.time() + self._interval(record, watched)})
        except GatewayError as exc:
            log.info("watcher_poll_failed", job_id=job_id, code=exc.code)
            await self._retry_later(job_id)
        except (RedisError, OSError) as exc:
            # The lease expires by itself; the job stays in the active set for the next round.
            log.warning("watcher_poll_failed", job_id=job_id, error_type=type(exc).__name__)
            return
        with contextlib.suppress(RedisError, OSError):
            await redis.delete(self._lease(job_id))

    async def _retry_later(self, job_id: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._services.redis.zadd(self._active, {job_id: time.time() + 5.0})

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
        base = FIRST_POLL_S.get(record.surface, 2.0)
        age = max(0.0, time.time() - record.created)
        return min(base * (1.0 + age / 30.0), _MAX_UNWATCHED_S)
