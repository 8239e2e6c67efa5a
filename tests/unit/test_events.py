"""app/jobs/events.py: what one watcher's backlog hands on, read once per event."""

from __future__ import annotations

import asyncio

from app.jobs.events import Subscription, read_frame


def _drain(subscription: Subscription) -> list[bytes]:
    async def take() -> list[bytes]:
        frames = []
        while True:
            try:
                frame, _ = await asyncio.wait_for(subscription.next(), 0.05)
            except TimeoutError:
                return frames
            frames.append(frame)

    return asyncio.run(take())


def test_a_repeated_status_is_skipped_but_stream_chunks_never_are() -> None:
    subscription = Subscription("j")
    subscription.last_status = "IN_PROGRESS"  # the socket opened with this status
    for data in (b'{"status": "IN_PROGRESS"}', b'{"status": "IN_PROGRESS", "stream": ["a"]}',
                 b'{"status": "IN_PROGRESS", "stream": ["a"]}', b'{"status": "COMPLETED", "output": 1}'):
        subscription.deliver(read_frame(data))
    frames = _drain(subscription)
    assert frames == [b'{"status": "IN_PROGRESS", "stream": ["a"]}'] * 2 + [b'{"status": "COMPLETED", "output": 1}']


def test_read_frame() -> None:
    assert read_frame(b'{"status": "FAILED"}').terminal
    assert read_frame(b'{"status": "IN_QUEUE"}').status == "IN_QUEUE"
    assert read_frame(b'{"status": "IN_PROGRESS", "stream": []}').status is None
    unreadable = read_frame(b"not json")
    assert (unreadable.status, unreadable.terminal) == (None, False)


def test_an_overflowing_backlog_wakes_its_reader() -> None:
    subscription = Subscription("j")
    subscription.last_status = "IN_PROGRESS"
    for _ in range(300):
        subscription.deliver(read_frame(b'{"status": "IN_PROGRESS"}'))  # all skipped as repeats

    async def next_frame() -> tuple[bytes, bool]:
        return await asyncio.wait_for(subscription.next(), 1)

    assert asyncio.run(next_frame()) == (b"", False) and subscription.overflowed
