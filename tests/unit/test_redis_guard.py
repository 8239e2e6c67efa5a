"""app/redis_guard.py: each call bounded in time; a breaker that fails fast, then probes once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.redis_guard import RedisGuard, RedisUnavailable

Call = Callable[[], Awaitable[str]]


class _Calls:
    """Counts the calls that reached "Redis"; each answers with the next outcome."""

    def __init__(self) -> None:
        self.made = 0

    def ok(self, value: str = "ok") -> Call:
        async def call() -> str:
            self.made += 1
            return value

        return call

    def failing(self, exc: Exception) -> Call:
        async def call() -> str:
            self.made += 1
            raise exc

        return call

    def hanging(self) -> Call:
        async def call() -> str:
            self.made += 1
            await asyncio.sleep(10)
            return "late"

        return call


async def test_a_call_that_answers_in_time_passes_its_result() -> None:
    calls = _Calls()
    assert await RedisGuard().run(calls.ok("pong")) == "pong"


@pytest.mark.parametrize("failure", [RedisConnectionError("down"), OSError("reset"), TimeoutError()])
async def test_redis_and_socket_failures_become_unavailable(failure: Exception) -> None:
    with pytest.raises(RedisUnavailable) as caught:
        await RedisGuard().run(_Calls().failing(failure))
    assert caught.value.__cause__ is failure


async def test_other_errors_are_not_redis_failures() -> None:
    guard = RedisGuard(failures_to_open=1)
    with pytest.raises(ValueError):
        await guard.run(_Calls().failing(ValueError("bug")))
    assert not guard.is_open


async def test_a_hung_call_costs_at_most_the_timeout() -> None:
    guard = RedisGuard(timeout_s=0.05)
    started = asyncio.get_running_loop().time()
    with pytest.raises(RedisUnavailable):
        await guard.run(_Calls().hanging())
    assert asyncio.get_running_loop().time() - started < 1


async def test_the_breaker_opens_fails_fast_then_lets_one_probe_through() -> None:
    guard, calls = RedisGuard(failures_to_open=2, open_s=0.2), _Calls()
    for _ in range(2):
        with pytest.raises(RedisUnavailable):
            await guard.run(calls.failing(RedisConnectionError()))
    assert guard.is_open and calls.made == 2
    with pytest.raises(RedisUnavailable) as caught:
        await guard.run(calls.ok())
    assert calls.made == 2  # open: Redis was not asked
    assert caught.value.retry_after_s == 1  # whole seconds, at least one
    await asyncio.sleep(0.25)
    # Half-open: one probe goes through; a second caller meanwhile still fails fast.
    release = asyncio.Event()

    async def slow_probe() -> str:
        calls.made += 1
        await release.wait()
        return "back"

    probe = asyncio.create_task(guard.run(slow_probe))
    await asyncio.sleep(0.01)
    with pytest.raises(RedisUnavailable):
        await guard.run(calls.ok())
    release.set()
    assert await probe == "back"
    assert not guard.is_open
    assert await guard.run(calls.ok("again")) == "again"
    assert calls.made == 4


async def test_a_failed_probe_keeps_the_breaker_open_for_another_period() -> None:
    guard, calls = RedisGuard(failures_to_open=1, open_s=0.1), _Calls()
    with pytest.raises(RedisUnavailable):
        await guard.run(calls.failing(RedisConnectionError()))
    await asyncio.sleep(0.15)
    with pytest.raises(RedisUnavailable):
        await guard.run(calls.failing(RedisConnectionError()))  # the probe
    with pytest.raises(RedisUnavailable):
        await guard.run(calls.ok())
    assert calls.made == 2


def test_retry_after_is_the_open_period_while_closed() -> None:
    assert RedisGuard(open_s=4.2).retry_after_s() == 5
