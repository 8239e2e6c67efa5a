"""Background upkeep of the ``HealthBoard``: RunPod's /health polls and Redis sharing.

Every ``poll_interval_s`` each replica:
1. pushes its own outcomes since the last tick (ok/failed per endpoint, into a 10 s bucket
   hash) and the cooling it decided (a key that expires when the cooling ends);
2. for each endpoint, takes a Redis lease (SET NX PX interval) and, only if it won it, asks
   RunPod's ``GET /v2/{endpoint}/health`` and stores the answer: N replicas poll each endpoint
   once per interval between them, not N times;
3. reads back every endpoint's stored /health, cooling and the window's outcome buckets, and
   writes them onto the board; recomputes the latency p50s.
Failures here are logged and skipped: stale health is better than no requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
import redis.asyncio as aioredis
import structlog

from app.routing.health import HealthBoard
from app.routing.schema import RoutingConfig
from app.store import Keys
from app.upstream.client import RunPodClient

log = structlog.get_logger(__name__)
_BUCKET_S = 10
_POLL_TIMEOUT_S = 3.0


class Endpoint(msgspec.Struct, frozen=True):
    id: str
    base_url: str
    api_key: str


def endpoints_of(config: RoutingConfig) -> list[Endpoint]:
    """Every RunPod endpoint routing.yaml names, once (several models may share one)."""
    seen: dict[str, Endpoint] = {}
    for surface in config.surfaces.values():
        for route in surface.models.values():
            for ref in route.endpoint_refs:
                if ref.id not in seen:
                    seen[ref.id] = Endpoint(ref.id, route.base_url or config.upstream.base_url, config.upstream.api_key)
    return list(seen.values())


class HealthSync:
    def __init__(
        self,
        board: HealthBoard,
        redis: aioredis.Redis,
        keys: Keys,
        client: RunPodClient,
        config: Callable[[], RoutingConfig],
        *,
        enabled: bool = True,
    ) -> None:
        self.board = board
        self.redis = redis
        self.keys = keys
        self.client = client
        self.config = config
        self.enabled = enabled  # off for serve --local: no RunPod endpoints to judge
        self.ticks = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            interval = self.config().health.poll_interval_s
            try:
                await self.tick()
            except Exception as exc:  # Redis down, odd answers: keep serving on what we know
                log.warning("health_sync_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def tick(self) -> None:
        config = self.config()
        self.board.config = config.health
        endpoints = endpoints_of(config) if self.enabled else []
        await self._push(config)
        await asyncio.gather(*(self._poll(endpoint, config) for endpoint in endpoints))
        await self._pull([endpoint.id for endpoint in endpoints], config)
        self.board.refresh_latency()
        self.ticks += 1

    async def _push(self, config: RoutingConfig) -> None:
        now = time.time()
        bucket = int(now // _BUCKET_S)
        keep_s = int(config.health.error_window_s) + _BUCKET_S
        pipe = self.redis.pipeline(transaction=False)
        pushed = False
        for endpoint_id, state in self.board.endpoints.items():
            if state.new_ok or state.new_failed:
                key = self.keys.health_outcomes(endpoint_id, bucket)
                if state.new_ok:
                    pipe.hincrby(key, "ok", state.new_ok)
                if state.new_failed:
                    pipe.hincrby(key, "failed", state.new_failed)
                pipe.expire(key, keep_s)
                state.new_ok = state.new_failed = 0
                pushed = True
            if state.cool_pending and state.cool_until > now:
                left_ms = int((state.cool_until - now) * 1000)
                pipe.set(self.keys.health_cool(endpoint_id), repr(state.cool_until), px=max(left_ms, 1))
                state.cool_pending = False
                pushed = True
        if pushed:
            await pipe.execute()

    async def _poll(self, endpoint: Endpoint, config: RoutingConfig) -> None:
        interval_ms = int(config.health.poll_interval_s * 1000)
        if not await self.redis.set(self.keys.health_lease(endpoint.id), "1", nx=True, px=interval_ms):
            return  # another replica polls it this interval
        url = f"{endpoint.base_url.rstrip('/')}/{endpoint.id}/health"
        try:
            answer = await self.client.call_json("GET", url, endpoint.api_key, timeout_s=_POLL_TIMEOUT_S)
        except Exception as exc:
            log.info("health_poll_failed", endpoint=endpoint.id, error=type(exc).__name__)
            return
        workers = answer.get("workers") if isinstance(answer, dict) else None
        jobs = answer.get("jobs") if isinstance(answer, dict) else None
        if not isinstance(workers, dict) or not isinstance(jobs, dict):
            return
        state = {
            "idle": _count(workers.get("idle")),
            "running": _count(workers.get("running")),
            "in_queue": _count(jobs.get("inQueue")),
            "in_progress": _count(jobs.get("inProgress")),
            "at": time.time(),
        }
        keep_ms = max(interval_ms * 3, 30_000)
        await self.redis.set(self.keys.health_state(endpoint.id), msgspec.json.encode(state), px=keep_ms)

    async def _pull(self, endpoint_ids: list[str], config: RoutingConfig) -> None:
        known = sorted(set(endpoint_ids) | set(self.board.endpoints))
        if not known:
            return
        bucket = int(time.time() // _BUCKET_S)
        buckets = [bucket - i for i in range(int(config.health.error_window_s // _BUCKET_S) + 1)]
        pipe = self.redis.pipeline(transaction=False)
        pipe.mget([self.keys.health_state(eid) for eid in known])
        pipe.mget([self.keys.health_cool(eid) for eid in known])
        for eid in known:
            for b in buckets:
                pipe.hmget(self.keys.health_outcomes(eid, b), ["ok", "failed"])
        results: list[Any] = await pipe.execute()
        states, cools, outcomes = results[0], results[1], results[2:]
        for index, eid in enumerate(known):
            entry = self.board.entry(eid)
            if states[index]:
                polled = msgspec.json.decode(states[index])
                entry.idle, entry.running, entry.polled_at = polled["idle"], polled["running"], polled["at"]
                entry.in_queue, entry.in_progress = polled["in_queue"], polled["in_progress"]
            else:  # no fresh /health answer (expired): unknown, not the last picture forever
                entry.idle, entry.running, entry.in_queue, entry.in_progress = None, 0, 0, 0
            if cools[index]:
                entry.cool_until = max(entry.cool_until, float(cools[index]))
            ok = failed = 0
            for pair in outcomes[index * len(buckets) : (index + 1) * len(buckets)]:
                ok += int(pair[0] or 0)
                failed += int(pair[1] or 0)
            # A few calls say little: the rate counts from five on.
            entry.error_rate = failed / (ok + failed) if ok + failed >= 5 else 0.0


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
