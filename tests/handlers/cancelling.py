"""Cancel a handler's job mid-work, as the runpod SDK does (``task.cancel()``), at a known point.

The job's progress callback (called from the model thread between steps, segments or
batches) holds the work at the first report until the test has cancelled the task, so the
cancellation lands exactly between the first and second unit of work.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from handlers.common.progress import EMULATOR_PROGRESS_KEY


async def cancel_after_first_progress(
    handler: Callable[[dict[str, Any]], Awaitable[Any]], job_input: Any
) -> list[dict[str, Any]]:
    """Run ``handler``, cancel it at its first progress report; the reports it made."""
    reached, released = threading.Event(), threading.Event()
    updates: list[dict[str, Any]] = []

    def progress(update: dict[str, Any]) -> None:
        updates.append(update)
        if not reached.is_set():
            reached.set()
            released.wait(10)

    task = asyncio.create_task(handler({"id": "job-1", "input": job_input, EMULATOR_PROGRESS_KEY: progress}))
    assert await asyncio.to_thread(reached.wait, 10), "the handler never reported progress"
    task.cancel()
    await asyncio.sleep(0.05)  # the task sees the cancellation and sets the job's token
    released.set()
    try:
        await asyncio.wait_for(task, 10)
    except asyncio.CancelledError:
        return updates
    raise AssertionError("the handler finished instead of stopping")
