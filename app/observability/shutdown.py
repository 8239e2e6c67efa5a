"""Graceful shutdown: SIGTERM turns /readyz 503, then the server drains, streams end cleanly.

Timeline after SIGTERM (``delay`` = ``DRYAPI_SHUTDOWN_DELAY_S``, ``drain`` = ``DRYAPI_DRAIN_S``):

* at once: ``Drain.active`` (``/readyz`` answers 503, so load balancers stop sending);
* after ``delay``: uvicorn's own SIGTERM handling runs: the listener closes (no new
  connections), idle keep-alive connections close, in-flight requests get ``drain`` seconds;
* at ``delay + drain - 1`` s: open SSE streams that have not finished end with a final
  ``server_shutting_down`` error frame instead of being cut when uvicorn gives up.

The hook wraps whatever SIGTERM handler the server installed (uvicorn's), so the server's
own shutdown sequence is unchanged; it is only installable from the main thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from types import FrameType
from typing import Any

import structlog

log = structlog.get_logger("dryapi.shutdown")

# Streams are ended this long before the server's drain timeout would cut them.
_STREAM_MARGIN_S = 1.0


class Drain:
    """One per app: whether the process is shutting down, and when open streams must end."""

    def __init__(self, drain_s: float, delay_s: float = 0.0) -> None:
        self.drain_s = drain_s
        self.delay_s = delay_s
        self.started_at: float | None = None
        self._started = asyncio.Event()

    @property
    def active(self) -> bool:
        return self.started_at is not None

    def start(self) -> None:
        """Idempotent; call on the event loop's thread."""
        if self.started_at is None:
            self.started_at = time.monotonic()
            self._started.set()
            log.warning("draining", drain_s=self.drain_s, delay_s=self.delay_s)

    def streams_deadline(self) -> float | None:
        if self.started_at is None:
            return None
        return self.started_at + self.delay_s + max(0.0, self.drain_s - _STREAM_MARGIN_S)

    async def streams_must_end(self) -> None:
        """Returns when open streams must send their final frame."""
        await self._started.wait()
        deadline = self.streams_deadline()
        assert deadline is not None
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))


_DRAIN: ContextVar[Drain | None] = ContextVar("dryapi_drain", default=None)


def set_current_drain(drain: Drain) -> None:
    _DRAIN.set(drain)


def current_drain() -> Drain | None:
    """The serving app's drain (set per request by the request middleware)."""
    return _DRAIN.get()


Handler = Callable[[int, FrameType | None], Any] | int | None


class SignalHook:
    """Wraps the installed SIGTERM handler: drain first, hand the signal on after ``delay_s``."""

    def __init__(self, drain: Drain, loop: asyncio.AbstractEventLoop) -> None:
        self._drain = drain
        self._loop = loop
        self._previous: Handler = None
        self._installed = False
        self._forwarded = False
        self._seen = 0

    def install(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False  # e.g. a server thread in tests: no signals there
        self._previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._on_term)
        self._installed = True
        return True

    def uninstall(self) -> None:
        if self._installed and threading.current_thread() is threading.main_thread():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(signal.SIGTERM, self._previous)  # type: ignore[arg-type]
            self._installed = False

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        # A signal handler may run in the middle of loop code: only the self-pipe is safe here.
        self._seen += 1
        self._loop.call_soon_threadsafe(self._drain.start)
        if self._drain.delay_s > 0 and self._seen == 1:
            self._loop.call_soon_threadsafe(self._loop.call_later, self._drain.delay_s, self._delayed, signum)
        else:
            self._forward(signum, frame)  # a second SIGTERM skips the delay

    def _delayed(self, signum: int) -> None:
        if not self._forwarded:
            self._forward(signum, None)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self._forwarded = True
        previous = self._previous
        if callable(previous):
            previous(signum, frame)
        elif previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
