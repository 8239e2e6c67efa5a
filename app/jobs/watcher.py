"""Following jobs to a terminal state: one poller per job across every replica.

Followed jobs sit in Redis sorted sets scored by when they are next due. Any replica's
watcher loop takes due jobs in one atomic step (``app/lua/claim_due_jobs.lua``: a taken job's
score moves to the end of a lease), polls RunPod once, and schedules the next poll, so the job
is polled at one poller's rate however many replicas run, and a dead replica's jobs are picked
up by the others once their lease runs out. Every job is swept on a backoff schedule (this
recovers lost callbacks); jobs with a WebSocket watcher are also polled fast, through
``/stream`` for streamed chat jobs so watchers get chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog
from redis.exceptions import RedisError

from app import lua
from app.errors import GatewayError
from app.jobs.records import FIRST_POLL_S, TERMINAL_STATUSES, JobRecord, decode_record
from app.jobs.tracker import JobTracker
from app.services import Services

log = structlog.get_logger("dryapi.watcher")

_MAX_UNWATCHED_S = 30.0
WATCHED_INTERVAL_S = 0.25
_LEASE_S = 15.0  # a taken job is due again after this if its taker never reschedules it
_BATCH = 64
_RETRY_S = 5.0  # after a failed poll


class JobWatcher:
    """Two lanes of due jobs in Redis: the sweep lane holds every followed job on its backoff
    schedule and is drawn at most ``DRYAPI_SWEEP_RATE`` polls/s per process (RunPod rate-limits
    /status, and a burst of thousands of queued jobs must not starve requests); the fast lane
    holds jobs with a WebSocket watcher, polled every ``WATCHED_INTERVAL_S``, never held up by
    the sweep backlog."""

    def __init__(self, services: Services, tracker: JobTracker, *, concurrency: int = 32) -> None:
        self._services = services
        self._tracker = tracker
        self._keys = services.keys
        self._sweep_lane = services.keys.sweep_lane
        self._fast_lane = services.keys.fast_lane
        self._claim_due = lua.register(services.redis, "claim_due_jobs")
        self._slots = asyncio.Semaphore(concurrency)
        self._sweep_rate = services.settings.sweep_rate
        self._sweep_tokens = self._sweep_rate
        self._refilled_at = time.monotonic()
        self.polls = 0  # upstream polls made by this process (tests and metrics read it)

    async def forget(self, job_id: str) -> None:
        async with self._services.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self._sweep_lane, job_id)
            pipe.zrem(self._fast_lane, job_id)
            await pipe.execute()

    async def watch(self, job_id: str) -> None:
        """A WebSocket is watching: poll fast. Call again within 30 s to keep it."""
        async with self._services.redis.pipeline(transaction=False) as pipe:
            pipe.set(self._keys.job_watched(job_id), b"1", ex=30)
            pipe.zadd(self._fast_lane, {job_id: time.time()}, nx=True)  # keep a schedule already running
            await pipe.execute()

    async def run(self, stop: asyncio.Event) -> None:
        tasks: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            try:
                for job_id, fast in await self._lease_due():
                    task = asyncio.create_task(self._poll(job_id, fast=fast))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            except Exception as exc:
                log.warning("watcher_loop_error", error_type=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.1)
        for task in tasks:
            task.cancel()

    async def _lease_due(self) -> list[tuple[str, bool]]:
        """Due jobs this process took, each with whether it came from the fast lane.

        "Is it still due" and "take it" are one atomic step: a replica that read a job as due
        just before another rescheduled it cannot take it afresh and poll it again.
        """
        allowance = self._sweep_allowance()
        from_fast, taken = await self._claim_due(
            keys=[self._fast_lane, self._sweep_lane], args=[repr(time.time()), _BATCH, allowance, _LEASE_S]
        )
        ids = _ids(taken)
        self._sweep_tokens -= len(ids) - int(from_fast)
        return [(job_id, index < int(from_fast)) for index, job_id in enumerate(ids)]

    def _sweep_allowance(self) -> int:
        """Sweep polls this tick may start: a token bucket of one second's worth at the rate."""
        now = time.monotonic()
        elapsed, self._refilled_at = now - self._refilled_at, now
        self._sweep_tokens = min(self._sweep_rate, self._sweep_tokens + elapsed * self._sweep_rate)
        return min(_BATCH, int(self._sweep_tokens))

    async def _poll(self, job_id: str, *, fast: bool) -> None:
        redis = self._services.redis
        lane = self._fast_lane if fast else self._sweep_lane
        try:
            async with self._slots:
                async with redis.pipeline(transaction=False) as pipe:
                    pipe.get(self._services.keys.job(job_id))
                    pipe.exists(self._tracker.result_key(job_id))
                    pipe.exists(self._keys.job_watched(job_id))
                    raw, finished, watched = await pipe.execute()
                if not raw or finished:
                    await self._settle(job_id, stop=True)  # expired, or finalised (e.g. by the callback)
                    return
                record = decode_record(raw)
                if fast != bool(watched):
                    # Watchers came (the fast lane polls it) or left (back to the sweep schedule alone).
                    next_sweep = None if fast else time.time() + self._interval(record)
                    await self._settle(job_id, lane=lane, at=next_sweep)
                    return
                body = await self.poll_once(record, watched=fast)
                if body["status"] in TERMINAL_STATUSES:
                    await self._settle(job_id, stop=True)
                    return
                next_poll = time.time() + (WATCHED_INTERVAL_S if fast else self._interval(record))
        except GatewayError as exc:
            log.info("watcher_poll_failed", job_id=job_id, code=exc.code)
            next_poll = time.time() + _RETRY_S
        except (RedisError, OSError) as exc:
            # The lease runs out by itself; the job is due again then.
            log.warning("watcher_poll_failed", job_id=job_id, error_type=type(exc).__name__)
            return
        await self._settle(job_id, lane=lane, at=next_poll)

    async def _settle(self, job_id: str, *, lane: str = "", at: float | None = None, stop: bool = False) -> None:
        """After a poll, in one round trip: reschedule ``job_id`` in ``lane`` at ``at`` (None:
        take it out of that lane), or ``stop`` following it. Rescheduling never puts back a job
        that was forgotten meanwhile (e.g. finished by RunPod's callback)."""
        with contextlib.suppress(RedisError, OSError):
            async with self._services.redis.pipeline(transaction=False) as pipe:
                if stop:
                    pipe.zrem(self._sweep_lane, job_id)
                    pipe.zrem(self._fast_lane, job_id)
                elif at is None:
                    pipe.zrem(lane, job_id)
                else:
                    pipe.zadd(lane, {job_id: at}, xx=True)
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
                return await self._tracker.observe(record, raw, chunks=chunks, remember=True)
            if chunks:
                await self._tracker.publish(record.id, {"id": record.id, "status": "IN_PROGRESS", "stream": chunks})
        raw = await client.status(record.endpoint_url, api_key, record.id)
        return await self._tracker.observe(record, raw, remember=True)

    def api_key(self) -> str:
        return self._services.upstream_api_key()

    @staticmethod
    def _interval(record: JobRecord) -> float:
        """The sweep lane's gap: the surface's base delay first, then doubling (the gap equals
        the job's age) up to the cap."""
        base = FIRST_POLL_S.get(record.surface, 2.0)
        age = max(0.0, time.time() - record.created)
        return min(max(base, age), _MAX_UNWATCHED_S)


def _ids(raw_ids: list[Any]) -> list[str]:
    return [raw.decode() if isinstance(raw, bytes) else str(raw) for raw in raw_ids]
