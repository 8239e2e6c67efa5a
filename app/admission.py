"""Per-key shares of what all tenants share in one process: open job WebSockets and Redis.

A burst of WebSocket opens by one key used to take every Redis connection of the pool at once
(auth, limits, the job record), so other tenants' requests timed out on Redis and the breaker
opened for everyone. Here each key may hold ``max_open`` job sockets, and at most
``SETUP_SHARE`` of them do their Redis work at a time; the rest wait their turn on their own
key's queue. Admission is decided before any Redis call, on a digest of the presented key, so
even an unknown key's burst queues behind itself.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# Of the 128 connections in a process's Redis pool (app/store.py): one key gets an eighth.
SETUP_SHARE = 16


class _Share:
    __slots__ = ("open", "setups")

    def __init__(self, setup_share: int) -> None:
        self.open = 0
        self.setups = asyncio.Semaphore(setup_share)


def tenant_of(key: str | None) -> bytes:
    """Who a connection claims to be, before anyone has checked: a digest of its key."""
    return hashlib.sha256((key or "").encode("utf-8", "surrogatepass")).digest()


class KeyAdmission:
    def __init__(self, max_open: int, setup_share: int = SETUP_SHARE) -> None:
        self.max_open = max_open
        self._setup_share = setup_share
        self._shares: dict[bytes, _Share] = {}

    def try_open(self, tenant: bytes) -> bool:
        """Count one more open socket for ``tenant``; False (nothing counted) when at its cap."""
        share = self._shares.get(tenant)
        if share is None:
            share = self._shares[tenant] = _Share(self._setup_share)
        if share.open >= self.max_open:
            return False
        share.open += 1
        return True

    def close(self, tenant: bytes) -> None:
        share = self._shares.get(tenant)
        if share is None:
            return
        share.open -= 1
        if share.open <= 0:
            del self._shares[tenant]  # its last socket: waiters, if any, hold the semaphore itself

    @asynccontextmanager
    async def setup(self, tenant: bytes) -> AsyncIterator[None]:
        """Wait for one of ``tenant``'s Redis slots (only between ``try_open`` and ``close``)."""
        async with self._shares[tenant].setups:
            yield

    def open_count(self, tenant: bytes) -> int:
        share = self._shares.get(tenant)
        return share.open if share else 0
