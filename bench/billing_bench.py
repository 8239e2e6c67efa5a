"""Native submit throughput with billing on against billing off, in one run.

Starts ``bench/fast_upstream.py`` (an instant RunPod-compatible upstream) and, in turn, a
gateway with ``billing.enabled: false`` and one with ``true`` (same routing otherwise, a real
key in a real Redis, the key topped up so no submit is refused), and measures
``POST /api/v1/client/txt2img`` with ``wrk``. Rounds alternate off/on so a busy machine's
drift hits both; the table shows each round and the medians. Each round also reports the
gateway process's CPU time per request (from ``/proc``), which other work on a shared machine
disturbs far less than requests per second.

    python -m bench.billing_bench [--duration 5] [--rounds 2]

Needs ``wrk`` (Debian package ``wrk``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from app.serving import free_port
from bench.gateway_bench import REDIS_URL, ROOT, _process, _wrk

SUBMIT = {"model": "bench-image", "prompt": "a lighthouse", "width": 512, "height": 512, "steps": 4, "seed": 1}


def _routing(upstream: str, *, billing: bool) -> Path:
    path = Path(tempfile.mkdtemp()) / "routing.yaml"
    path.write_text(
        f"upstream: {{base_url: '{upstream}/v2', api_key: bench}}\n"
        "surfaces:\n"
        "  images:\n"
        "    models:\n"
        "      bench-image:\n"
        "        endpoint_id: img\n"
        "        inference_types: [txt2img]\n"
        "        pricing: {usd: 0.00136, per: {pixels: 262144, steps: 4, images: 1}}\n"
        f"billing: {{enabled: {str(billing).lower()}, initial_balance_usd: 5.0}}\n"
    )
    return path


def _cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, check=True).stdout


def _paying_key(env: dict[str, str]) -> str:
    issued = json.loads(_cli(env, "keys", "create", "--name", "bench", "--balance", "1000000", "--json")
                        .strip().splitlines()[-1])
    key: str = issued["key"]
    return key


def _cpu_s(pid: int) -> float:
    """User plus system CPU seconds ``pid`` has used (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _round(upstream: str, *, billing: bool, duration: int) -> tuple[float, float]:
    """(requests/s, gateway CPU microseconds per request)."""
    prefix = f"bench-billing:{os.getpid()}:{int(billing)}:{free_port()}:"
    routing = _routing(upstream, billing=billing)
    # fast_upstream's jobs never end, so the watcher would sweep an ever-growing backlog at
    # DRYAPI_SWEEP_RATE polls/s in both modes alike: one poll/s keeps that out of the figures.
    env = {"REDIS_URL": REDIS_URL, "DRYAPI_REDIS_PREFIX": prefix, "DRYAPI_ROUTING": str(routing),
           "DRYAPI_LOG_FORMAT": "json", "DRYAPI_SWEEP_RATE": "1"}
    key = _paying_key(env)
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "app", "serve", "--port", str(port), "--routing", str(routing)]
    with _process(args, env, f"{gateway}/healthz") as proc:
        before = _cpu_s(proc.pid)
        rps = _wrk(f"{gateway}/api/v1/client/txt2img", SUBMIT, {"authorization": f"Bearer {key}"}, duration)[0]
        return rps, (_cpu_s(proc.pid) - before) / (rps * duration) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per round")
    parser.add_argument("--rounds", type=int, default=2, help="off/on pairs")
    args = parser.parse_args()
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    uvicorn_args = [sys.executable, "-m", "uvicorn", "bench.fast_upstream:app", "--port", str(up_port),
                    "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    off: list[tuple[float, float]] = []
    on: list[tuple[float, float]] = []
    with _process(uvicorn_args, {}, f"{upstream}/"):
        for _ in range(args.rounds):
            off.append(_round(upstream, billing=False, duration=args.duration))
            on.append(_round(upstream, billing=True, duration=args.duration))
    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    print(f"native txt2img submits, wrk 32 connections, {args.duration} s a round, one gateway worker\n")
    print("| billing | " + " | ".join(f"round {i + 1} req/s" for i in range(args.rounds))
          + " | median req/s | median CPU µs/req |")
    print("|---|" + "---|" * (args.rounds + 2))
    for name, rounds in (("off", off), ("on", on)):
        cells = " | ".join(f"{rps:,.0f}" for rps, _ in rounds)
        print(f"| {name} | {cells} | {statistics.median(r for r, _ in rounds):,.0f} "
              f"| {statistics.median(c for _, c in rounds):,.0f} |")
    change = statistics.median(r for r, _ in on) / statistics.median(r for r, _ in off) - 1
    cpu = statistics.median(c for _, c in on) / statistics.median(c for _, c in off) - 1
    print(f"\nbilling on vs off: {change:+.1%} req/s, {cpu:+.1%} gateway CPU per request")
    pairs = [r_on / r_off - 1 for (r_off, _), (r_on, _) in zip(off, on, strict=True)]
    print("per round pair (on/off - 1): " + ", ".join(f"{pair:+.1%}" for pair in pairs))


if __name__ == "__main__":
    main()
