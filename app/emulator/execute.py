"""Calling a handler through the runpod SDK's own job code, turning what it does into an ``Outcome``.

The handler runs inside ``runpod.serverless.modules.rp_job``: ``run_job`` for a plain
function (which awaits a coroutine, pops ``error`` and ``refresh_worker`` from a returned
dict, and wraps a raised exception as its JSON string) and ``run_job_generator`` for a
generator (which wraps each yield as ``{"output": ...}`` and an exception as
``"handler: ... traceback: ..."``). What ``rp_job.handle_job`` then does with the
generator's items (a yielded dict's truthy ``error`` becomes ``str(error)`` and ends the job
FAILED; every other item is streamed and, with ``return_aggregate_stream``, aggregated) is
``_stream`` below; ``tests/emulator/test_sdk_equivalence.py`` runs the same handlers
through ``handle_job`` itself and compares.

One deliberate difference: the SDK calls a *sync* handler (or iterates a sync generator)
inline on its event loop, blocking it; the emulator shares its loop with the gateway, so it
runs the same SDK coroutine on a private loop in a daemon thread instead. That thread can
be abandoned when the job is cancelled or times out; async handlers run on the emulator's
loop, where cancelling the task raises ``CancelledError`` inside them, as in runpod >= 1.10.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

try:
    from runpod.serverless.modules import rp_job
    from runpod.serverless.modules.rp_handler import is_generator
    from runpod.serverless.modules.rp_logger import RunPodLogger
except ModuleNotFoundError as exc:  # the gateway alone does not need the SDK; the emulator does
    raise ModuleNotFoundError(
        "the emulator runs handlers through the runpod SDK: pip install 'dryapi-gateway[handlers]' (runpod>=1.12)"
    ) from exc

from app.emulator.outcome import Chunk, Outcome, aggregate, chunk, exception_error, snapshot

T = TypeVar("T")

OnChunk = Callable[[Chunk], None]  # called on the loop thread, in yield order

# The SDK's job code prints through its own logger, at DEBUG by default, outputs included
# (and exception messages, which may quote inputs, at ERROR). The emulator records all of
# that in the job; its logger stays silent unless RUNPOD_LOG_LEVEL asks for it.
RunPodLogger().level = (os.environ.get("RUNPOD_LOG_LEVEL") or "NOTSET").upper()


async def execute(
    handler: Callable[..., Any],
    job: dict[str, Any],
    on_chunk: OnChunk,
    stop: threading.Event,
    worker_id: str,
    *,
    aggregate_stream: bool = True,
) -> Outcome:
    """Run ``handler(job)`` to completion as a RunPod worker would."""
    loop = asyncio.get_running_loop()
    try:
        if is_generator(handler):
            if inspect.isasyncgenfunction(handler):
                return await _stream(rp_job.run_job_generator(handler, job), on_chunk, stop, aggregate_stream)

            def relay(piece: Chunk) -> None:
                loop.call_soon_threadsafe(on_chunk, piece)

            outputs = rp_job.run_job_generator(handler, job)
            return await _on_private_loop(_stream(outputs, relay, stop, aggregate_stream), stop)
        if inspect.iscoroutinefunction(handler):
            return _result(await rp_job.run_job(handler, job))
        return _result(await _on_private_loop(rp_job.run_job(handler, job), stop))
    except SystemExit as exc:  # rp_job catches Exception only; a handler must not stop the server
        return Outcome(error=exception_error(exc, worker_id))


async def _stream(
    outputs: AsyncIterator[dict[str, Any]], on_chunk: OnChunk, stop: threading.Event, aggregate_stream: bool
) -> Outcome:
    """``rp_job.handle_job``'s loop over a generator job, minus the HTTP posts."""
    collected: list[Chunk] = []
    async with contextlib.aclosing(outputs):  # type: ignore[type-var]
        async for stream_output in outputs:
            if stop.is_set():  # cancelled or timed out: stop pulling, nobody is listening
                break
            output = stream_output.get("output")
            if isinstance(output, dict) and output.get("error"):
                stream_output = {"error": str(output["error"])}  # handle_job: str(), not JSON
            if stream_output.get("error"):
                return Outcome(error=snapshot(stream_output["error"]))
            try:
                piece = chunk(output)
            except (TypeError, ValueError) as exc:  # the SDK's json.dumps of the post fails too
                return Outcome(error=snapshot(f"the handler yielded a value JSON cannot hold ({type(exc).__name__})"))
            collected.append(piece)
            on_chunk(piece)
    return Outcome(output=aggregate(collected if aggregate_stream else []))


def _result(run_result: dict[str, Any]) -> Outcome:
    """``run_job``'s result: ``error`` set means FAILED (RunPod reports the error, not the output)."""
    try:
        if run_result.get("error"):
            return Outcome(error=snapshot(run_result["error"]))
        if "output" not in run_result:
            return Outcome()
        return Outcome(output=snapshot(run_result["output"]))
    except (TypeError, ValueError) as exc:  # RunPod would never receive this result either
        return Outcome(error=snapshot(f"the handler returned a value JSON cannot hold ({type(exc).__name__})"))


async def _on_private_loop(work: Coroutine[Any, Any, T], stop: threading.Event) -> T:
    """Run ``work`` on its own event loop in a new daemon thread; if this await is cancelled,
    the thread is abandoned (it stops at the next item for generators)."""
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
            result: tuple[bool, Any] = (True, asyncio.run(work))
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
