"""Calling a handler of any kind and turning what it does into an ``Outcome``.

Sync functions and sync generators run in their own daemon thread (so one that is cancelled
or times out can be abandoned without tying up a pool); async functions and async generators
run on the event loop, where cancelling the task raises ``CancelledError`` inside them, as in
runpod SDK >= 1.10.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from app.emulator.outcome import Chunk, Outcome, aggregate, chunk, exception_error, returned, snapshot, yielded_error

T = TypeVar("T")

OnChunk = Callable[[Chunk], None]  # called on the loop thread, in yield order


async def execute(
    handler: Callable[..., Any], job: dict[str, Any], on_chunk: OnChunk, stop: threading.Event, worker_id: str
) -> Outcome:
    """Run ``handler(job)`` to completion; exceptions become the SDK's JSON-string error."""
    loop = asyncio.get_running_loop()
    try:
        if inspect.isasyncgenfunction(handler):
            return await _consume_async(handler(job), on_chunk)
        if inspect.isgeneratorfunction(handler):
            return await _in_thread(lambda: _consume_sync(handler(job), on_chunk, stop, loop), stop)
        if inspect.iscoroutinefunction(handler):
            value = await handler(job)
        else:
            value = await _in_thread(lambda: handler(job), stop)
        # A callable object or wrapper may hand back a coroutine or a generator instead.
        while inspect.isawaitable(value):
            value = await value
        if inspect.isasyncgen(value):
            return await _consume_async(value, on_chunk)
        if inspect.isgenerator(value):
            generator: Iterator[Any] = value
            return await _in_thread(lambda: _consume_sync(generator, on_chunk, stop, loop), stop)
        return returned(value)
    except (Exception, SystemExit) as exc:  # SystemExit: a handler must not stop the server
        return Outcome(error=exception_error(exc, worker_id))


async def _consume_async(generator: AsyncIterator[Any], on_chunk: OnChunk) -> Outcome:
    collected: list[Chunk] = []
    try:
        async for item in generator:
            error = yielded_error(item)
            if error is not None:
                return Outcome(error=snapshot(error))
            piece = chunk(item)
            collected.append(piece)
            on_chunk(piece)
    finally:
        closer = getattr(generator, "aclose", None)
        if closer is not None:
            await closer()
    return Outcome(output=aggregate(collected))


def _consume_sync(
    generator: Iterator[Any], on_chunk: OnChunk, stop: threading.Event, loop: asyncio.AbstractEventLoop
) -> Outcome:
    """Iterate a sync generator (in a worker thread), handing each chunk to the loop."""
    collected: list[Chunk] = []
    try:
        for item in generator:
            if stop.is_set():  # cancelled or timed out: stop pulling, nobody is listening
                break
            error = yielded_error(item)
            if error is not None:
                return Outcome(error=snapshot(error))
            piece = chunk(item)
            collected.append(piece)
            loop.call_soon_threadsafe(on_chunk, piece)
    finally:
        closer = getattr(generator, "close", None)
        if closer is not None:
            closer()
    return Outcome(output=aggregate(collected))


async def _in_thread(work: Callable[[], T], stop: threading.Event) -> T:
    """Run ``work`` in a new daemon thread; if this await is cancelled, the thread is abandoned."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(ok: bool, value: Any) -> None:
        if future.done():  # cancelled meanwhile: the result is ignored
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def target() -> None:
        try:
            result: tuple[bool, Any] = (True, work())
        except BaseException as exc:
            if not isinstance(exc, Exception | SystemExit):
                exc = RuntimeError(f"handler raised {type(exc).__name__}: {exc}")
            result = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop is gone (shut down): nobody to tell
            loop.call_soon_threadsafe(deliver, *result)

    threading.Thread(target=target, name="emulator-handler", daemon=True).start()
    try:
        return await future
    except asyncio.CancelledError:
        stop.set()
        raise
