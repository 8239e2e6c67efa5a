"""Redis hung (SIGSTOP) and then killed mid-test: DRYAPI_REDIS_FAILURE=open and closed.

Every request must finish within a second; a key the gateway has seen passes in ``open``
mode, everyone gets 503 with Retry-After in ``closed`` mode, and a key the gateway has not
seen is never admitted.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.gateway.conftest import Gateway, start_gateway
from tests.limits.conftest import RedisServer, routing_with, sub_prefix
from tests.support.servers import ServerThread

LIMITS = "limits: {tiers: {basic: {rpm: 1000}}}\n"
CHAT = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Setup:
    open_gw: Gateway
    closed_gw: Gateway
    open_key: str
    closed_key: str
    unseen_key: str


@pytest.fixture
def setup(emulator: ServerThread, spare_redis: RedisServer, redis_prefix: str) -> Iterator[Setup]:
    upstream = f"{emulator.url}/v2"
    routing = routing_with(upstream, LIMITS)
    prefix = sub_prefix(redis_prefix)
    # A short key cache, so the open gateway must fall back on a stale entry.
    open_gw = start_gateway(upstream, spare_redis.url, prefix, routing=routing, redis_failure="open", key_cache_s=0.5,
                           redis_timeout_s=0.25)
    closed_gw = start_gateway(upstream, spare_redis.url, prefix, routing=routing, redis_failure="closed",
                              redis_timeout_s=0.25)
    keys = [open_gw.issue_key(name, tier="basic").key for name in ("seen-open", "seen-closed", "unseen")]
    yield Setup(open_gw, closed_gw, *keys)
    for gateway in (open_gw, closed_gw):
        gateway.server.stop()


def call(gateway: Gateway, key: str) -> httpx.Response:
    started = time.monotonic()
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}, timeout=10
    )
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"request took {elapsed:.2f}s"
    return response


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["type"] == "server_error"


def check_failure_modes(s: Setup) -> None:
    for _ in range(5):  # past the breaker's threshold: later calls fail fast
        assert call(s.open_gw, s.open_key).status_code == 200
        assert_unavailable(call(s.closed_gw, s.closed_key))
        for gateway in (s.open_gw, s.closed_gw):
            # Never admitted without Redis, whether the gateway knows the key exists or not.
            assert call(gateway, s.unseen_key).status_code in (401, 503)
            assert call(gateway, "dry-never-issued").status_code in (401, 503)


@pytest.mark.process
def test_redis_hung_then_killed(setup: Setup, spare_redis: RedisServer) -> None:
    s = setup
    # Both gateways see their key once while Redis is healthy.
    assert call(s.open_gw, s.open_key).status_code == 200
    assert call(s.closed_gw, s.closed_key).status_code == 200
    time.sleep(0.6)  # the open gateway's cache entry is now stale: it must be used anyway

    # Hung: connections open but nothing answers; every call must give up on its own.
    spare_redis.process.send_signal(signal.SIGSTOP)
    try:
        check_failure_modes(s)
    finally:
        spare_redis.process.send_signal(signal.SIGCONT)

    # Back: after the breaker's open period one probe goes through and service resumes.
    deadline = time.monotonic() + 10
    while call(s.closed_gw, s.closed_key).status_code != 200:
        assert time.monotonic() < deadline, "the closed gateway did not recover after Redis came back"
        time.sleep(0.2)
    assert call(s.open_gw, s.open_key).status_code == 200

    # Dead: connections refused.
    spare_redis.process.kill()
    spare_redis.process.wait(timeout=10)
    time.sleep(0.6)
    check_failure_modes(s)
