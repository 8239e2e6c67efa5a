"""app/observability/timing.py: the per-request clock that splits gateway time from RunPod time."""

from __future__ import annotations

import asyncio
import contextvars

from prometheus_client import REGISTRY

from app.observability.timing import (
    RequestClock,
    add_upstream_time,
    current_clock,
    record_upstream,
    reset_clock,
    start_clock,
)


def test_overhead_is_elapsed_time_less_upstream_time_never_negative() -> None:
    clock = RequestClock()
    clock.upstream_s = 0.25
    assert clock.overhead_s(now=clock.started + 1.0) == 0.75
    assert clock.overhead_s(now=clock.started + 0.1) == 0.0


def _count(endpoint: str, operation: str, status: str) -> float:
    labels = {"endpoint": endpoint, "operation": operation, "status": status}
    return REGISTRY.get_sample_value("dryapi_upstream_request_duration_seconds_count", labels) or 0.0


def test_calls_add_to_the_current_request_only() -> None:
    def request() -> RequestClock:
        clock, token = start_clock()
        try:
            assert current_clock() is clock
            record_upstream("ep-unit", "run", "200", 0.5)
            record_upstream("ep-unit", "stream", "200", 0.3, waited=False)  # its pieces are added below
            add_upstream_time(0.125)
            return clock
        finally:
            reset_clock(token)

    before = _count("ep-unit", "run", "200")
    clock = contextvars.copy_context().run(request)
    assert (clock.calls, clock.upstream_s) == (2, 0.625)
    assert _count("ep-unit", "run", "200") == before + 1
    assert current_clock() is None


def test_without_a_request_only_the_histogram_is_fed() -> None:
    before = _count("-", "status", "timeout")
    contextvars.copy_context().run(record_upstream, "", "status", "timeout", 1.0)  # no endpoint: "-"
    contextvars.copy_context().run(add_upstream_time, 1.0)  # nothing to add to, no error
    assert _count("-", "status", "timeout") == before + 1


async def test_tasks_a_request_spawns_share_its_clock() -> None:
    async def request() -> RequestClock:
        clock, token = start_clock()
        try:
            await asyncio.gather(*(asyncio.create_task(_upstream_call()) for _ in range(3)))
            return clock
        finally:
            reset_clock(token)

    async def _upstream_call() -> None:
        record_upstream("ep-unit", "status", "200", 0.25)

    clock = await asyncio.create_task(request())
    assert (clock.calls, clock.upstream_s) == (3, 0.75)
