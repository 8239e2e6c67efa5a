"""What ``models`` fallbacks and the endpoint choice add to a chat request.

One gateway worker in front of ``bench/fast_upstream.py`` (instant answers), in one run:

- plain: ``{"model": "bench-chat"}``, one endpoint;
- routed: ``{"model": "bench-unknown", "models": ["bench-multi", "bench-chat"], "provider": {"only": [...],
  "ignore": [...], "allow_fallbacks": true}}``: an unknown model passed over, then a model with
  three endpoints, two allowed, drawn by weight and health (the health sync runs every 0.5 s).

Requests alternate plain/routed so drift hits both alike. Then the same choice in process
(``Services.resolve_model``), without HTTP noise.

    python -m bench.routing_bench [--requests 3000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

import httpx

from app.errors import ModelNotFound
from app.routing.health import HealthBoard
from app.routing.loader import parse_routing
from app.routing.preferences import DEFAULT_PREFS, take_wishes
from app.routing.resolver import resolve_model
from app.serving import free_port
from bench.gateway_bench import REDIS_URL, _issue_key, _percentiles, _process

MESSAGES = [{"role": "user", "content": "hi"}]
PLAIN = {"model": "bench-chat", "messages": MESSAGES}
PREFS = {"only": ["east", "west"], "ignore": ["backup"], "allow_fallbacks": True}
ROUTED = {"model": "bench-unknown", "models": ["bench-multi", "bench-chat"], "provider": PREFS, "messages": MESSAGES}


def routing_text(upstream: str) -> str:
    return (
        f"upstream: {{base_url: '{upstream}/v2', api_key: bench}}\n"
        "health: {poll_interval_s: 0.5}\n"
        "surfaces:\n"
        "  chat:\n"
        "    models:\n"
        "      bench-chat: {endpoint_id: chat}\n"
        "      bench-multi:\n"
        "        endpoints: [{id: c1, name: east, weight: 2}, {id: c2, name: west}, {id: c3, name: backup}]\n"
    )


def _pair(url: str, headers: dict[str, str], n: int) -> tuple[list[float], list[float]]:
    plain: list[float] = []
    routed: list[float] = []
    with httpx.Client(headers=headers, timeout=10) as client:
        for _ in range(300):  # warm-up
            client.post(url, json=PLAIN).raise_for_status()
            client.post(url, json=ROUTED).raise_for_status()
        for _ in range(n):
            for body, samples in ((PLAIN, plain), (ROUTED, routed)):
                start = time.perf_counter()
                response = client.post(url, json=body)
                samples.append((time.perf_counter() - start) * 1000)
                response.raise_for_status()
    return plain, routed


def in_process(upstream: str) -> tuple[float, float]:
    """Microseconds per resolve: one endpoint, default prefs vs three endpoints with prefs."""
    config = parse_routing(routing_text(upstream)).config
    board = HealthBoard()
    for endpoint_id in ("c1", "c2", "c3"):
        state = board.entry(endpoint_id)
        state.idle, state.latency_p50 = 2, 0.01

    def plain() -> None:
        resolve_model(config, "chat", "bench-chat", board=board, prefs=DEFAULT_PREFS)

    def routed() -> None:  # parsing the body's routing keys included
        wishes = take_wishes({"model": "bench-unknown", "models": ROUTED["models"], "provider": PREFS})
        with contextlib.suppress(ModelNotFound):
            resolve_model(config, "chat", wishes.models[0], board=board, prefs=wishes.prefs)
        resolve_model(config, "chat", wishes.models[1], board=board, prefs=wishes.prefs)

    loops = 20000
    a = min(timeit.repeat(plain, number=loops, repeat=5)) / loops * 1e6
    b = min(timeit.repeat(routed, number=loops, repeat=5)) / loops * 1e6
    return a, b


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    up_port, gw_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    gateway = f"http://127.0.0.1:{gw_port}"
    prefix = f"bench:{os.getpid()}:"
    routing = Path(tempfile.mkdtemp()) / "routing.yaml"
    routing.write_text(routing_text(upstream))
    key = _issue_key(prefix)
    env = {"REDIS_URL": REDIS_URL, "DRYAPI_REDIS_PREFIX": prefix}
    uvicorn_args = [sys.executable, "-m", "uvicorn", "bench.fast_upstream:app", "--port", str(up_port),
                    "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    gateway_args = [sys.executable, "-m", "app", "serve", "--port", str(gw_port), "--routing", str(routing)]
    with _process(uvicorn_args, {}, f"{upstream}/"), _process(gateway_args, env, f"{gateway}/healthz"):
        plain, routed = _pair(f"{gateway}/v1/chat/completions", {"authorization": f"Bearer {key}"}, args.requests)
    (p50, p99), (r50, r99) = _percentiles(plain), _percentiles(routed)
    single_us, multi_us = in_process(upstream)

    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}; {args.requests} requests of each kind, alternating\n")
    print("| chat request through the gateway | p50 ms | p99 ms | mean ms |")
    print("|---|---|---|---|")
    print(f"| one model, one endpoint | {p50:.3f} | {p99:.3f} | {statistics.fmean(plain):.3f} |")
    print(f"| unknown model passed over, then 3 endpoints + provider prefs | {r50:.3f} | {r99:.3f} | "
          f"{statistics.fmean(routed):.3f} |")
    added_mean = statistics.fmean(routed) - statistics.fmean(plain)
    print(f"| **added** | **{r50 - p50:+.3f}** | {r99 - p99:+.3f} | {added_mean:+.3f} |")
    # Each routed request against the plain one just before it: drift and load cancel out.
    paired = statistics.median(r - p for p, r in zip(plain, routed, strict=True))
    print(f"\nmedian of paired differences (routed - the plain request before it): {paired:+.3f} ms")
    print(f"\nin process, per request: resolve one endpoint {single_us:.2f} us; "
          f"unknown model + 3 endpoints with prefs {multi_us:.2f} us (+{multi_us - single_us:.2f} us)")


if __name__ == "__main__":
    main()
