"""Fan-out of job events to this process's WebSocket watchers.

One Redis pattern subscription per process receives every job's events; each watcher gets
a bounded backlog. A watcher that falls behind is marked slow and dropped rather than
buffered without bound.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog

from app.jobs.records import TERMINAL_STATUSES
from app.services import Services

log = structlog.get_logger("dryapi.events")

QUEUE_LIMIT = 256
REFRESH_S = 10.0


class Subscription:
    """One watcher's bounded backlog of (frame, is_terminal).

    A plain list and one future rather than an ``asyncio.Queue``: this object lives as long as
    its socket, and a queue's three deques and event are ~3 KiB of every watcher.
    """

    __slots__ = ("_pending", "_waiter", "job_id", "overflowed")

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.overflowed = False
        self._pending: list[tuple[bytes, bool]] = []
        self._waiter: asyncio.Future[None] | None = None

    def deliver(self, frame: bytes, terminal: bool) -> None:
        if len(self._pending) >= QUEUE_LIMIT:
            self.overflowed = True
        else:
            self._pending.append((frame, terminal))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self) -> tuple[bytes, bool]:
        """The oldest undelivered frame, waiting for one if there is none."""
        while not self._pending:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._pending.pop(0)


class EventHub:
    """``refresh(job_id)`` is called every ``REFRESH_S`` for each job with local watchers
    (the job watcher uses it to keep those jobs on the fast poll)."""

    def __init__(self, services: Services, refresh: Callable[[str], Awaitable[None]] | None = None) -> None:
        self._services = services
        self._refresh = refresh
        self._refresher: asyncio.Task[None] | None = None
        self._prefix = services.keys.custom("jobev", "")
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def watchers(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    async def subscribe(self, job_id: str) -> Subscription:
        if self._reader is None or self._reader.done():
            self._ready.clear()
            self._reader = asyncio.create_task(self._read())
        if self._refresh is not None and (self._refresher is None or self._refresher.done()):
            self._refresher = asyncio.create_task(self._keep_fresh())
        await self._ready.wait()
        subscription = Subscription(job_id)
        self._subscribers[job_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subs = self._subscribers.get(subscription.job_id)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self._subscribers[subscription.job_id]

    async def close(self) -> None:
        for task in (self._reader, self._refresher):
            if task is not None:
                task.cancel()

    async def _keep_fresh(self) -> None:
        assert self._refresh is not None
        while True:
            await asyncio.sleep(REFRESH_S)
            for job_id in tuple(self._subscribers):
                try:
                    await self._refresh(job_id)
                except Exception as exc:
                    log.warning("event_refresh_failed", error_type=type(exc).__name__)
                    break

    async def _read(self) -> None:
        while True:
            pubsub = self._services.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(f"{self._prefix}*")
                self._ready.set()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    self._dispatch(message)
            except asyncio.CancelledError:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                raise
            except Exception as exc:
                log.warning("event_hub_error", error_type=type(exc).__name__)
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                await asyncio.sleep(0.5)

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        job_id = name[len(self._prefix) :]
        data = message.get("data")
        subscribers = self._subscribers.get(job_id)
        if not isinstance(data, bytes) or not subscribers:
            return
        terminal = _is_terminal(data)  # decoded once per event, not once per watcher
        for subscription in tuple(subscribers):
            subscription.deliver(data, terminal)


def _is_terminal(frame: bytes) -> bool:
    try:
        event = msgspec.json.decode(frame)
    except msgspec.DecodeError:
        return False
    return isinstance(event, dict) and event.get("status") in TERMINAL_STATUSES
