"""Per-request clocks: how long a request spent waiting on RunPod, for the overhead metric.

The request middleware puts a ``RequestClock`` in a contextvar; the RunPod client adds the
time of every upstream call to it. Tasks a request spawns copy the context, so they share
the same (mutable) clock; background tasks have none and only feed the upstream histogram.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token

from app.metrics import UPSTREAM_DURATION


class RequestClock:
    __slots__ = ("calls", "started", "upstream_s")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.upstream_s = 0.0
        self.calls = 0

    def overhead_s(self, now: float | None = None) -> float:
        elapsed = (now if now is not None else time.perf_counter()) - self.started
        return max(0.0, elapsed - self.upstream_s)


_CLOCK: ContextVar[RequestClock | None] = ContextVar("dryapi_request_clock", default=None)


def start_clock() -> tuple[RequestClock, Token[RequestClock | None]]:
    clock = RequestClock()
    return clock, _CLOCK.set(clock)


def reset_clock(token: Token[RequestClock | None]) -> None:
    _CLOCK.reset(token)


def current_clock() -> RequestClock | None:
    return _CLOCK.get()


def add_upstream_time(seconds: float) -> None:
    """Time spent waiting on RunPod that is not one whole call (a stream's pieces)."""
    clock = _CLOCK.get()
    if clock is not None:
        clock.upstream_s += seconds


def record_upstream(endpoint: str, operation: str, status: str, seconds: float, *, waited: bool = True) -> None:
    """One finished RunPod call; ``waited`` adds its time to the request's upstream total."""
    UPSTREAM_DURATION.labels(endpoint=endpoint or "-", operation=operation, status=status).observe(seconds)
    clock = _CLOCK.get()
    if clock is not None:
        clock.calls += 1
        if waited:
            clock.upstream_s += seconds
