"""Fixtures for the observability tests: the scripted-worker emulator and real gateway processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.keys import IssuedKey, KeyStore
from app.store import Keys, create_redis
from tests.gateway.conftest import ROUTING, RUNPOD_KEY, emulator
from tests.support.servers import ServerThread, free_port

__all__ = ["emulator"]  # a fixture, re-exported for these tests

ROOT = Path(__file__).resolve().parents[2]


def issue_key(redis_url: str, prefix: str, name: str = "obs") -> IssuedKey:
    async def create() -> IssuedKey:
        redis = create_redis(redis_url)
        try:
            return await KeyStore(redis, Keys(prefix)).create(name)
        finally:
            await redis.aclose()

    return asyncio.run(create())


@dataclass
class GatewayProcess:
    """``python -m app serve`` as a real subprocess, its output captured to files."""

    proc: subprocess.Popen[bytes]
    url: str
    out: Path
    err: Path
    prefix: str
    env: dict[str, str] = field(default_factory=dict)

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def start_gateway_process(
    tmp_path: Path, upstream: str, redis_url: str, prefix: str, *args: str, **env: str
) -> GatewayProcess:
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING.format(upstream=upstream, runpod_key=RUNPOD_KEY, limited=upstream))
    port = free_port()
    full_env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DRYAPI_REDIS_PREFIX": prefix,
        "DRYAPI_ROUTING": str(routing),
        "DRYAPI_LOG_FORMAT": "json",
        "DRYAPI_SIGNING_SECRET": "obs-test-secret",
        **env,
    }
    out, err = tmp_path / f"stdout-{port}.log", tmp_path / f"stderr-{port}.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port), *args],
            cwd=ROOT,
            env=full_env,
            stdout=stdout,
            stderr=stderr,
        )
    gateway = GatewayProcess(proc, f"http://127.0.0.1:{port}", out, err, prefix, full_env)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, gateway.output()
        try:
            if httpx.get(f"{gateway.url}/healthz", timeout=1).status_code == 200:
                return gateway
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "gateway process did not start"
        time.sleep(0.1)


@pytest.fixture
def gateway_process(
    tmp_path: Path, emulator: ServerThread, redis_url: str, redis_prefix: str
) -> Iterator[GatewayProcess]:
    prefix = f"{redis_prefix}obs{uuid.uuid4().hex[:6]}:"
    gateway = start_gateway_process(tmp_path, f"{emulator.url}/v2", redis_url, prefix)
    yield gateway
    if gateway.proc.poll() is None:
        gateway.proc.kill()
        gateway.proc.wait(timeout=10)
