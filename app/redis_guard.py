"""Time-bounded Redis calls behind a small circuit breaker, for the per-request paths.

Auth lookups, rate-limit checks and usage writes sit on every request: a slow or dead Redis
must cost each request at most ``timeout_s``, and once it has failed a few times in a row
the breaker stops trying for ``open_s`` (every call fails fast), then lets one probe through.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisError

T = TypeVar("T")

FAILURES_TO_OPEN = 3
OPEN_S = 5.0


class RedisUnavailable(Exception):
    """Redis did not answer in time, failed, or the breaker is open."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("Redis is unavailable")
        self.retry_after_s = retry_after_s


class RedisGuard:
    def __init__(
        self, *, timeout_s: float = 0.25, failures_to_open: int = FAILURES_TO_OPEN, open_s: float = OPEN_S
    ) -> None:
        self.timeout_s = timeout_s
        self._failures_to_open = failures_to_open
        self._open_s = open_s
        self._failures = 0
        self._open_until = 0.0
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._failures >= self._failures_to_open

    def retry_after_s(self) -> int:
        remaining = self._open_until - time.monotonic()
        return max(1, math.ceil(remaining if remaining > 0 else self._open_s))

    def _admit(self) -> bool:
        """Whether this call may go to Redis; True when it is the half-open probe."""
        if not self.is_open:
            return False
        if time.monotonic() < self._open_until or self._probing:
            raise RedisUnavailable(self.retry_after_s())
        self._probing = True
        return True

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()`` within ``timeout_s``; any Redis failure becomes ``RedisUnavailable``."""
        probe = self._admit()
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await call()
        except (RedisError, OSError, TimeoutError) as exc:
            self._failures += 1
            if self.is_open:
                self._open_until = time.monotonic() + self._open_s
            raise RedisUnavailable(self.retry_after_s()) from exc
        finally:
            if probe:
                self._probing = False
        self._failures = 0
        return result
