"""Model work in a thread that a cancelled job can stop between steps.

The runpod SDK runs handlers on its event loop and stops a cancelled or timed-out job by
cancelling its task (runpod >= 1.10). A sync handler blocks that loop, so the stop is seen
only when the job has finished anyway. Our handlers are async instead: ``run_in_thread``
runs the blocking work in a thread and, when the task is cancelled, sets the work's
``CancelToken``; the work calls ``token.check()`` between denoising steps, segments or
batches and ends there with ``JobCancelled``. The task waits for that (the model is free
again before the worker takes its next job) and then re-raises ``CancelledError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class JobCancelled(Exception):
    """Raised inside the model work at its next check after the job was cancelled."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """End the work here if its job was cancelled."""
        if self._event.is_set():
            raise JobCancelled


async def run_in_thread(work: Callable[[CancelToken], T]) -> T:
    """``work(token)`` in a worker thread; cancelling the awaiting task cancels the token."""
    token = CancelToken()
    future = asyncio.ensure_future(asyncio.to_thread(work, token))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        token.cancel()
        with contextlib.suppress(JobCancelled, Exception):
            await future  # until the work reaches its next check point
        raise
