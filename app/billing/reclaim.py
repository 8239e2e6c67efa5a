"""Refunding holds a dead gateway left behind.

A submit holds money before RunPod's ``/run`` names the job; a gateway killed in between leaves
a hold no job will ever settle. Each hold sits in its key's pending set until its job is
recorded or it settles. Every replica runs this loop: it looks through the keys (a batch of
key ids per round trip) for holds pending longer than ``billing.stale_hold_s`` and refunds
them (ledger: a ``refund`` noted ``stale hold``), each by one replica, once
(``Ledger.reclaim_stale``).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from redis.exceptions import RedisError

from app.services import Services

log = structlog.get_logger("dryapi.billing")

_MAX_INTERVAL_S = 30.0
_BATCH = 100
_LEASE_S = 60.0  # a replica that took holds and died leaves them to another after this
# Who may hold money without an issued key: the operator's admin key and open (keyless) mode.
_BUILTIN_IDS = ["admin", "open"]


class HoldReclaimer:
    def __init__(self, services: Services) -> None:
        self._services = services

    def interval_s(self) -> float:
        """How often to look: a quarter of the grace period, at most every 30 s."""
        return min(_MAX_INTERVAL_S, self._services.routing.config.billing.stale_hold_s / 4)

    async def sweep(self) -> int:
        """Refund every hold stale now; the number refunded."""
        grace = self._services.routing.config.billing.stale_hold_s
        ledger = self._services.ledger
        total = 0

        async def reclaim(key_ids: list[str]) -> None:
            nonlocal total
            for key_id in await ledger.pending_since(key_ids, grace):
                while True:
                    refunded, taken = await ledger.reclaim_stale(key_id, grace, limit=_BATCH, lease_s=_LEASE_S)
                    total += refunded
                    if taken < _BATCH:
                        break

        await reclaim(_BUILTIN_IDS)
        async for key_ids in self._services.key_store.ids():
            await reclaim(key_ids)
        if total:
            log.warning("stale_holds_refunded", count=total)
        return total

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep()
            except (RedisError, OSError) as exc:
                log.warning("stale_hold_sweep_failed", error_type=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s())
