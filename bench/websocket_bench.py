"""Jobs benchmark: enqueue throughput, and WebSocket fan-out to many watchers on one worker.

Starts ``bench/fast_upstream.py`` and one gateway worker (auth on, real Redis), then:
1. enqueue throughput: ``POST /v1/embeddings`` with ``Prefer: respond-async`` under wrk
   (32 connections) — each request is a RunPod /run, a job record and a 202;
2. opens ``--watchers`` WebSockets spread over ``--jobs`` async jobs, measures the gateway's
   resident memory per watcher, then publishes job events into Redis (as the job watcher
   does) and measures publish-to-receive latency at every watcher.

    python -m bench.websocket_bench [--watchers 10000] [--jobs 100] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis
from websockets.asyncio.client import connect

from app.serving import free_port
from app.store import Keys
from bench.gateway_bench import REDIS_URL, _issue_key, _process, _wrk

ROOT = Path(__file__).resolve().parents[1]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _upstream_calls(gateway: str, operation: str) -> int:
    """How many RunPod calls of one kind the gateway has made (from its /metrics)."""
    metrics = httpx.get(f"{gateway}/metrics", timeout=10).text
    pattern = rf'dryapi_upstream_request_duration_seconds_count{{[^}}]*operation="{operation}"[^}}]*}} (\S+)'
    return int(sum(float(value) for value in re.findall(pattern, metrics)))


def _gateway_pid(port: int) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in cmd and str(port).encode() in cmd:
                return int(entry.name)
    raise RuntimeError("gateway process not found")


async def _watchers(
    url: str, key: str, job_ids: list[str], per_job: int, rounds: int, prefix: str, interval_s: float, pid: int
) -> dict[str, float]:
    latencies: list[float] = []
    opened = asyncio.Event()
    ready = 0
    total = len(job_ids) * per_job
    gate = asyncio.Semaphore(256)
    done = asyncio.Event()

    async def watch(job_id: str) -> None:
        nonlocal ready
        async with gate:
            socket = await connect(
                f"{url}/v1/jobs/chat/{job_id}/ws", additional_headers={"authorization": f"Bearer {key}"},
                open_timeout=60, ping_interval=None, max_queue=64,
            )
            await socket.recv()  # the status at connection time
        ready += 1
        if ready == total:
            opened.set()
        try:
            while not done.is_set():
                try:
                    frame = await asyncio.wait_for(socket.recv(), timeout=1.0)
                except TimeoutError:
                    continue
                sent = json.loads(frame).get("t")
                if sent:
                    latencies.append(time.time() - sent)
        finally:
            await socket.close()

    tasks = [asyncio.create_task(watch(job_id)) for job_id in job_ids for _ in range(per_job)]
    started = time.perf_counter()
    waiter = asyncio.create_task(opened.wait())
    while not opened.is_set():
        await asyncio.wait([waiter, *tasks], timeout=5, return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise RuntimeError(f"{len(failed)} watchers failed to open, e.g. {failed[0].exception()!r}")
        if time.perf_counter() - started > 600:
            raise RuntimeError(f"only {ready} of {total} watchers opened")
    open_s = time.perf_counter() - started
    # The measuring client holds 10k connections too: keep its own GC pauses out of the figures.
    gc.collect()
    gc.freeze()
    gc.disable()
    await asyncio.sleep(1.0)
    # Memory is sampled while every watcher is still open: once idle, once after the fan-out.
    stats = {"open_s": open_s, "rss_held": float(_rss_kib(pid))}
    publisher = redis.Redis.from_url(REDIS_URL)
    # Events arrive spread over time, as jobs progress independently; each reaches its job's
    # watchers. ``interval_s`` sets the offered load: watchers-per-job frames per interval.
    for _ in range(rounds):
        for job_id in job_ids:
            # A stream frame: watchers skip a repeated bare status frame, never new chunks.
            frame = json.dumps({"id": job_id, "status": "IN_PROGRESS", "stream": ["."], "t": time.time()})
            publisher.publish(Keys(prefix).job_events(job_id), frame)
            await asyncio.sleep(interval_s)
    deadline = time.monotonic() + 30
    while len(latencies) < total * rounds and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    stats["rss_fanout"] = float(_rss_kib(pid))
    done.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    publisher.close()
    ordered = sorted(latencies) or [float("nan")]
    stats.update(
        received=len(latencies),
        expected=total * rounds,
        p50_ms=statistics.median(ordered) * 1000,
        p99_ms=ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000,
    )
    return stats


@contextmanager
def _gateway(routing: Path, name: str) -> Iterator[tuple[str, str, int, str]]:
    """One gateway worker with its own Redis prefix and key: (base URL, API key, pid, prefix)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    prefix = f"benchws:{os.getpid()}:{name}:"
    key = _issue_key(prefix)
    # One key opens every watcher here: lift the per-key socket cap (DRYAPI_WS_PER_KEY) above them.
    env = {"REDIS_URL": REDIS_URL, "DRYAPI_REDIS_PREFIX": prefix, "DRYAPI_PUBLIC_URL": url}
    env["DRYAPI_WS_PER_KEY"] = "1000000"
    args = [sys.executable, "-m", "app", "serve", "--port", str(port), "--routing", str(routing)]
    with _process(args, env, f"{url}/healthz"):
        yield url, key, _gateway_pid(port), prefix


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--watchers", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--interval-ms", type=float, default=20.0, help="pause between two job events")
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    routing = Path(tempfile.mkdtemp()) / "routing.yaml"
    routing.write_text(
        f"upstream: {{base_url: '{upstream}/v2', api_key: bench}}\n"
        "surfaces:\n"
        "  embeddings: {default_model: e, models: {e: {endpoint_id: emb}}}\n"
        "  chat: {default_model: c, models: {c: {endpoint_id: chat}}}\n"
    )
    uvicorn_args = [sys.executable, "-m", "uvicorn", "bench.fast_upstream:app", "--port", str(up_port),
                    "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    with _process(uvicorn_args, {}, f"{upstream}/"):
        enqueue_rps, sweeps = 0.0, 0
        if shutil.which("wrk"):
            with _gateway(routing, "enqueue") as (gateway, key, _, _):
                body = {"input": "queue me"}
                headers = {"authorization": f"Bearer {key}", "prefer": "respond-async"}
                enqueue_rps = _wrk(f"{gateway}/v1/embeddings", body, headers, args.duration)[0]
                # The upstream keeps every job IN_PROGRESS, so the worker also sweeps them all meanwhile.
                sweeps = _upstream_calls(gateway, "status")
        # A fresh worker for the fan-out, so the thousands of never-ending jobs just queued are
        # not swept during it: each target is measured on its own.
        with _gateway(routing, "fanout") as (gateway, key, pid, prefix):
            headers = {"authorization": f"Bearer {key}", "prefer": "respond-async"}
            with httpx.Client(headers=headers) as client:
                job_ids = [
                    client.post(f"{gateway}/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
                    .json()["id"]
                    for _ in range(args.jobs)
                ]
            time.sleep(1.0)
            rss_before = _rss_kib(pid)
            per_job = args.watchers // args.jobs
            stats = asyncio.run(
                _watchers(
                    gateway.replace("http", "ws"), key, job_ids, per_job, args.rounds, prefix,
                    args.interval_ms / 1000, pid,
                )
            )
    watchers = per_job * args.jobs
    machine = f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores"
    print(f"\nmachine: {machine}, python {platform.python_version()}")
    print(f"| enqueue (Prefer: respond-async), 32 connections, one worker | {enqueue_rps:,.0f} req/s "
          f"(and {sweeps / args.duration:,.0f} status polls/s of the queued jobs meanwhile) |")
    print(f"| {watchers:,} WebSocket watchers over {args.jobs} jobs: opened in | {stats['open_s']:.1f} s |")
    for label, rss in (("held idle", stats["rss_held"]), ("held, after the fan-out", stats["rss_fanout"])):
        print(f"| gateway RSS, watchers {label} | {rss_before / 1024:.0f} MiB → {rss / 1024:.0f} MiB "
              f"({(rss - rss_before) / watchers:.1f} KiB per watcher) |")
    rate = per_job / (args.interval_ms / 1000)
    print(f"| fan-out latency publish→client at {rate:,.0f} frames/s, p50 / p99 "
          f"| {stats['p50_ms']:.1f} ms / {stats['p99_ms']:.1f} ms "
          f"({int(stats['received']):,} of {int(stats['expected']):,} frames) |")


if __name__ == "__main__":
    main()
