"""Memory under unauthenticated traffic: random unknown keys must not grow the gateway.

Starts one gateway worker (``python -m app serve``, auth on, a real key in a real Redis), warms
it up (the key cache fills with unknown digests), then sends ``--unknown`` requests with random
unknown keys (a few hundred of them 1 MiB long, which the server refuses) and ``--valid``
requests with the real key, and reports the process's RSS before and after. Target: within
10 % of the warmed-up figure (exit status 1 otherwise).

    python -m bench.auth_memory_bench [--unknown 100000] [--valid 10000] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

from app.serving import free_port
from bench.gateway_bench import REDIS_URL, _issue_key, _process
from bench.websocket_bench import _gateway_pid, _rss_kib

HUGE_KEYS = 200  # 1 MiB each: refused by the server's header limit
WARM_UP_UNKNOWN = 20_000


async def _send(url: str, keys: list[str], connections: int) -> dict[int, int]:
    """GET /v1/models once per key, ``connections`` at a time; counts of each status (0: closed)."""
    counts: dict[int, int] = {}
    queue = iter(keys)

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for key in queue:
                try:
                    status = (await client.get("/v1/models", headers={"authorization": f"Bearer {key}"})).status_code
                except httpx.TransportError:
                    status = 0
                counts[status] = counts.get(status, 0) + 1

    await asyncio.gather(*(worker() for _ in range(connections)))
    return counts


def _mixed(unknown: int, valid: int, key: str, huge: int) -> list[str]:
    """Unknown keys with ``valid`` uses of the real one spread among them, then ``huge`` 1 MiB keys."""
    keys = [secrets.token_urlsafe(32) for _ in range(unknown)]
    step = max(1, unknown // max(1, valid))
    out: list[str] = []
    used = 0
    for index, unknown_key in enumerate(keys):
        out.append(unknown_key)
        if index % step == 0 and used < valid:
            out.append(key)
            used += 1
    out.extend(itertools.repeat(key, valid - used))
    out.extend(itertools.repeat("k" * (1024 * 1024), huge))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--unknown", type=int, default=100_000)
    parser.add_argument("--valid", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    prefix = f"benchauth:{os.getpid()}:"
    routing = Path(tempfile.mkdtemp()) / "routing.yaml"
    routing.write_text(
        "upstream: {base_url: 'http://127.0.0.1:9/v2', api_key: bench}\n"
        "surfaces:\n  embeddings: {default_model: e, models: {e: {endpoint_id: emb}}}\n"
    )
    key = _issue_key(prefix)
    env = {"REDIS_URL": REDIS_URL, "DRYAPI_REDIS_PREFIX": prefix}
    serve = [sys.executable, "-m", "app", "serve", "--port", str(port), "--routing", str(routing)]
    try:
        with _process(serve, env, f"{url}/healthz"):
            pid = _gateway_pid(port)
            started = _rss_kib(pid)
            warm = asyncio.run(_send(url, _mixed(WARM_UP_UNKNOWN, 2_000, key, 20), args.connections))
            warmed = _rss_kib(pid)
            clock = time.perf_counter()
            keys = _mixed(args.unknown, args.valid, key, HUGE_KEYS)
            counts = asyncio.run(_send(url, keys, args.connections))
            elapsed = time.perf_counter() - clock
            after = _rss_kib(pid)
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for stale in client.scan_iter(match=f"{prefix}*", count=500):
            client.delete(stale)
        client.close()
    growth = (after - warmed) / warmed * 100
    print(f"RSS at start {started / 1024:.1f} MiB; after warm-up {warmed / 1024:.1f} MiB (statuses {warm})")
    print(
        f"after {args.unknown} unknown + {args.valid} valid + {HUGE_KEYS} x 1 MiB keys in {elapsed:.1f} s: "
        f"{after / 1024:.1f} MiB ({growth:+.1f} % of the warmed-up figure; statuses {counts})"
    )
    if abs(growth) > 10:
        raise SystemExit(f"RSS moved {growth:+.1f} % (target within 10 %)")


if __name__ == "__main__":
    main()
