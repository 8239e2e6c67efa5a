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


class Frame(msgspec.Struct, frozen=True):
    """What the hub reads of an event once, for all of its watchers."""

    data: bytes
    status: str | None  # None: not a plain status frame (stream chunks, or unreadable)
    terminal: bool


class Subscription:
    """One watcher's bounded backlog of frames.

    A plain list and one future rather than an ``asyncio.Queue``: this object lives as long as
    its socket, and a queue's three deques and event are ~3 KiB of every watcher. A status
    frame that repeats the status the watcher last got is skipped, so the frame a socket opens
    with and the event of the same change never both reach it.
    """

    __slots__ = ("_pending", "_waiter", "job_id", "last_status", "overflowed")

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.overflowed = False
        self.last_status: str | None = None  # set by the socket to the status of the frame it sent
        self._pending: list[Frame] = []
        self._waiter: asyncio.Future[None] | None = None

    def deliver(self, frame: Frame) -> None:
        if len(self._pending) >= QUEUE_LIMIT:
            self.overflowed = True
        else:
            self._pending.append(frame)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self) -> tuple[bytes, bool]:
        """The oldest undelivered frame (data, is_terminal), waiting for one if there is none."""
        while True:
            while not self._pending and not self.overflowed:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
            if not self._pending:  # overflowed: the caller drops this watcher
                return b"", False
            frame = self._pending.pop(0)
            if frame.status is not None and frame.status == self.last_status:
                continue  # the same status again: nothing new for this watcher
            if frame.status is not None:
                self.last_status = frame.status
            return frame.data, frame.terminal


class EventHub:
    """``refresh(job_id)`` is called every ``REFRESH_S`` for each job with local watchers
    (the job watcher uses it to keep those jobs on the fast poll).

    The same machinery serves other per-topic channels: ``prefix`` names the channels (the
    topic is the rest of the name) and ``reader`` turns an event into the frame watchers get
    (the realtime hub, ``app/realtime/hub.py``, uses it for Pusher sockets).
    """

    def __init__(
        self,
        services: Services,
        refresh: Callable[[str], Awaitable[None]] | None = None,
        *,
        prefix: str | None = None,
        reader: Callable[[str, bytes], Frame] | None = None,
    ) -> None:
        self._services = services
        self._refresh = refresh
        self._refresher: asyncio.Task[None] | None = None
        self._prefix = prefix if prefix is not None else services.keys.job_events_prefix
        self._read_frame = reader or _job_frame
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
        frame = self._read_frame(job_id, data)  # decoded once per event, not once per watcher
        for subscription in tuple(subscribers):
            subscription.deliver(frame)


class _Head(msgspec.Struct):
    status: Any = None
    stream: Any = None


def _job_frame(job_id: str, data: bytes) -> Frame:
    return read_frame(data)


def read_frame(data: bytes) -> Frame:
    try:
        head = msgspec.json.decode(data, type=_Head)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Frame(data, None, False)
    status = head.status if isinstance(head.status, str) else None
    terminal = status in TERMINAL_STATUSES
    return Frame(data, None if head.stream is not None else status, terminal)
