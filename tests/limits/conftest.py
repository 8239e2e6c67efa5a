"""Fixtures for the rate-limit and usage tests: the scripted-worker emulator, gateways whose
routing carries a ``limits:`` section, and a throwaway redis-server a test may stop or kill."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from tests.gateway.conftest import ROUTING, RUNPOD_KEY, emulator
from tests.support.servers import free_port

__all__ = ["emulator"]  # a fixture, re-exported for these tests


def routing_with(upstream: str, limits: str) -> str:
    """The gateway tests' routing (scripted workers) plus a ``limits:`` section."""
    return ROUTING.format(upstream=upstream, runpod_key=RUNPOD_KEY, limited=upstream) + limits


def sub_prefix(redis_prefix: str) -> str:
    return f"{redis_prefix}{uuid.uuid4().hex[:6]}:"


def wait_for_fresh_minute(url: str, needed_s: float = 10.0) -> None:
    """Fixed windows reset on the minute (Redis' clock): start a burst with ``needed_s`` to spare."""
    client = redis.Redis.from_url(url)
    try:
        seconds, micros = client.time()
    finally:
        client.close()
    into = seconds % 60 + micros / 1e6
    if into > 60 - needed_s:
        time.sleep(60 - into + 0.05)


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def spare_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, without persistence, that the test may stop or kill."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("these tests need redis-server on PATH")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(process, port)
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(server.url, socket_connect_timeout=0.5).ping()
            break
        except redis.RedisError:
            assert process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield server
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
