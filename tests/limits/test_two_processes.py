"""Two `dryapi-gateway serve` processes sharing one Redis: the combined count is exact."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.keys import KeyStore
from app.store import Keys, create_redis
from tests.limits.conftest import routing_with, sub_prefix, wait_for_fresh_minute
from tests.support.servers import ServerThread, free_port

ROOT = Path(__file__).resolve().parents[2]
LIMITS = """
limits:
  tiers:
    basic: {rpm: 7}
"""


@pytest.fixture
def two_gateways(
    emulator: ServerThread, redis_url: str, redis_prefix: str, tmp_path: Path
) -> Iterator[tuple[list[str], str]]:
    prefix = sub_prefix(redis_prefix)
    routing = tmp_path / "routing.yaml"
    routing.write_text(routing_with(f"{emulator.url}/v2", LIMITS))

    async def issue() -> str:
        redis = create_redis(redis_url)
        try:
            return (await KeyStore(redis, Keys(prefix)).create("shared", tier="basic")).key
        finally:
            await redis.aclose()

    key = asyncio.run(issue())
    env = {**os.environ, "REDIS_URL": redis_url, "DRYAPI_REDIS_PREFIX": prefix, "DRYAPI_SIGNING_SECRET": "s" * 64,
           # Exact counting is under test, not the 250 ms bound on a Redis call: on a busy machine
           # (parallel test workers) a call may take longer, and its 503 would skew the count.
           "DRYAPI_REDIS_TIMEOUT_MS": "5000"}
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port), "--routing", str(routing)],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 60
        for process, url in zip(processes, urls, strict=True):
            while True:
                assert process.poll() is None, (process.stderr.read() if process.stderr else b"").decode()
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "gateway process did not start"
                time.sleep(0.1)
        yield urls, key
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


@pytest.mark.process
def test_combined_count_across_two_processes_is_exact(two_gateways: tuple[list[str], str], redis_url: str) -> None:
    urls, key = two_gateways
    wait_for_fresh_minute(redis_url)
    body = {"model": "tiny-embed", "input": "count me"}

    def fire(index: int) -> tuple[int, int]:
        response = httpx.post(
            f"{urls[index % 2]}/v1/embeddings", json=body, headers={"authorization": f"Bearer {key}"}, timeout=20
        )
        return index % 2, response.status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(fire, range(24)))
    statuses = Counter(status for _, status in results)
    assert statuses == {200: 7, 429: 17}
    # Both processes refused some: the window is shared, not per process.
    assert {index for index, status in results if status == 429} == {0, 1}
