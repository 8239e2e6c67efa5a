"""Endpoint health: RunPod's /health shared through Redis, queue-aware choice, cooling."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import msgspec
import openai
import pytest

from app.routing.health import HealthBoard
from app.routing.health_sync import HealthSync, endpoints_of
from app.routing.schema import HealthConfig
from app.store import Keys, create_redis
from app.upstream.client import RunPodClient
from tests.gateway.conftest import RUNPOD_KEY, Gateway
from tests.openrouter.routing_env import CALLS, ask, client, emulator, gateway, served_by
from tests.support.servers import ServerThread

__all__ = ["client", "emulator", "gateway"]
_AUTH = {"authorization": f"Bearer {RUNPOD_KEY}"}


def _until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.fixture
def backlog(emulator: ServerThread) -> Iterator[None]:
    """ep-busy (one worker) running one slow job with two more waiting."""
    job = {"input": {"openai_route": "/v1/chat/completions",
                     "openai_input": {"messages": [{"role": "user", "content": "slow 4"}]}}}
    for _ in range(3):
        httpx.post(f"{emulator.url}/v2/ep-busy/run", json=job, headers=_AUTH).raise_for_status()
    yield
    httpx.post(f"{emulator.url}/v2/ep-busy/purge-queue", headers=_AUTH)


def test_emulator_health_reports_real_queue_and_workers(emulator: ServerThread, backlog: None) -> None:
    _until(lambda: httpx.get(f"{emulator.url}/v2/ep-busy/health", headers=_AUTH).json()["jobs"]["inProgress"] == 1)
    health = httpx.get(f"{emulator.url}/v2/ep-busy/health", headers=_AUTH).json()
    assert health["jobs"]["inQueue"] == 2
    assert health["workers"]["running"] == 1 and health["workers"]["idle"] == 0
    idle = httpx.get(f"{emulator.url}/v2/ep-idle/health", headers=_AUTH).json()
    assert idle["jobs"]["inQueue"] == 0 and idle["workers"]["idle"] == 4


def test_an_endpoint_with_a_queue_loses_traffic_to_an_idle_one(
    gateway: Gateway, client: openai.OpenAI, backlog: None
) -> None:
    board = gateway.services.health
    _until(lambda: board.get("ep-busy") is not None and board.get("ep-busy").backlogged)
    assert board.get("ep-idle") is not None and board.get("ep-idle").idle == 4
    counts = Counter(served_by(ask(client, model="queued")) for _ in range(12))
    assert counts == {"idle": 12}


def test_health_is_shared_through_redis(gateway: Gateway, backlog: None) -> None:
    """Another replica (a second HealthSync on the same Redis) learns the queue without polling."""

    async def other_replica() -> HealthBoard:
        redis = create_redis(gateway.settings.redis_url)
        upstream = RunPodClient()
        board = HealthBoard()
        config = gateway.services.routing.config
        sync = HealthSync(board, redis, Keys(gateway.settings.redis_prefix), upstream, lambda: config)
        try:
            deadline = time.monotonic() + 5
            while not (board.get("ep-busy") and board.get("ep-busy").backlogged):  # type: ignore[union-attr]
                assert time.monotonic() < deadline
                await sync.tick()
                await asyncio.sleep(0.05)
            return board
        finally:
            await upstream.aclose()
            await redis.aclose()

    board = asyncio.run(other_replica())
    assert board.get("ep-busy").in_queue >= 1  # type: ignore[union-attr]


def test_replicas_poll_each_endpoint_once_per_interval(gateway: Gateway, redis_prefix: str) -> None:
    config = msgspec.structs.replace(gateway.services.routing.config, health=HealthConfig(poll_interval_s=30))
    polls: Counter[str] = Counter()

    async def two_replicas() -> None:
        redis = create_redis(gateway.settings.redis_url)
        upstream = RunPodClient(observer=lambda endpoint, op, status, s: polls.update([op] if op == "health" else []))
        keys = Keys(f"{redis_prefix}lease-test:")
        syncs = [HealthSync(HealthBoard(), redis, keys, upstream, lambda: config) for _ in range(2)]
        try:
            await asyncio.gather(*(sync.tick() for sync in syncs))
            await asyncio.gather(*(sync.tick() for sync in syncs))  # same interval: no new polls
        finally:
            await upstream.aclose()
            await redis.aclose()

    asyncio.run(two_replicas())
    assert polls["health"] == len(endpoints_of(config))


def test_repeated_failures_cool_an_endpoint(gateway: Gateway, client: openai.OpenAI) -> None:
    before = CALLS["flaky"]
    for _ in range(3):  # cooling_failures: 3; each request still served, by the next endpoint
        completion = ask(client, model="flaky", provider={"order": ["flaky"]})
        assert served_by(completion) == "steady"
    assert CALLS["flaky"] == before + 3
    for _ in range(5):
        assert served_by(ask(client, model="flaky", provider={"order": ["flaky"]})) == "steady"
    assert CALLS["flaky"] == before + 3  # skipped while cooling
    # Other replicas learn it from Redis.
    key = Keys(gateway.settings.redis_prefix).health_cool("ep-flaky")

    async def cooled() -> bool:
        redis = create_redis(gateway.settings.redis_url)
        try:
            return bool(await redis.exists(key))
        finally:
            await redis.aclose()

    _until(lambda: asyncio.run(cooled()))


def test_a_cooling_endpoint_is_still_tried_when_nothing_else_is_left(gateway: Gateway, client: openai.OpenAI) -> None:
    board = gateway.services.health
    board.entry("ep-gamma").cool_until = time.time() + 60  # solo's only endpoint
    try:
        assert ask(client, model="solo").model == "solo"
        # ... but with another model to fall back to, the cooling one is passed over.
        before = CALLS["gamma"]
        assert ask(client, model="solo", models=["duo"]).model == "duo"
        assert CALLS["gamma"] == before
    finally:
        board.entry("ep-gamma").cool_until = 0.0


def test_latency_is_measured_per_endpoint(gateway: Gateway, client: openai.OpenAI) -> None:
    for _ in range(4):
        ask(client, model="duo", provider={"only": ["alpha"]})
    board = gateway.services.health
    _until(lambda: board.get("ep-alpha") is not None and board.get("ep-alpha").latency_p50 is not None)
    assert 0 < board.get("ep-alpha").latency_p50 < 5  # type: ignore[union-attr,operator]


def test_admin_sees_each_endpoints_health(gateway: Gateway, client: openai.OpenAI) -> None:
    ask(client, model="duo", provider={"only": ["alpha"]})
    admin = gateway.issue_key("or-route-admin", admin=True).key
    _until(lambda: httpx.get(f"{gateway.url}/admin/routing/health", headers={"authorization": f"Bearer {admin}"})
           .json()["endpoints"].get("ep-idle", {}).get("idle_workers") == 4)
    body = httpx.get(f"{gateway.url}/admin/routing/health", headers={"authorization": f"Bearer {admin}"}).json()
    alpha = body["endpoints"]["ep-alpha"]
    assert alpha["jobs_in_queue"] == 0 and alpha["polled_at"] and alpha["cooling_until"] is None
    denied = httpx.get(f"{gateway.url}/admin/routing/health", headers={"authorization": f"Bearer {client.api_key}"})
    assert denied.status_code == 403
