"""Unauthenticated requests must not grow a real ``serve`` process: big keys are refused by the
server, and unknown keys cost a bounded cache, whatever their number."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from tests.robustness.conftest import GatewayProcess, issue_key

pytestmark = pytest.mark.slow


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _unknown(client: httpx.Client, key: str) -> int:
    try:
        return client.get("/v1/models", headers={"authorization": f"Bearer {key}"}).status_code
    except httpx.TransportError:  # the server may close on a refused head before we finish sending
        return 0


def test_random_keys_do_not_grow_the_process(served: GatewayProcess, redis_url: str) -> None:
    valid = issue_key(redis_url, served.prefix, "memory").key
    with httpx.Client(base_url=served.url, timeout=30) as client:

        def burst(count: int, length: int) -> set[int]:
            return {_unknown(client, secrets.token_urlsafe(length)[:length]) for _ in range(count)}

        assert burst(500, 100) == {401}  # warm-up: the cache fills up with unknown digests
        assert client.get("/v1/models", headers={"authorization": f"Bearer {valid}"}).status_code == 200
        before = rss_mib(served.proc.pid)
        huge = {_unknown(client, secrets.token_hex(512 * 1024)) for _ in range(150)}  # 1 MiB keys
        assert huge <= {431, 0}, huge
        assert burst(300, 5000) == {401}  # long keys under the header cap: refused before hashing
        assert burst(3000, 100) == {401}
        after = rss_mib(served.proc.pid)
    # 150 MiB of keys were offered; before the fix the process kept ~150 MiB of them.
    assert after - before < 20, (before, after)
