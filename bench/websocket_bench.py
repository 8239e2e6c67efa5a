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
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis
from websockets.asyncio.client import connect

from app.serving import free_port
from bench.gateway_bench import REDIS_URL, _issue_key, _process, _wrk

ROOT = Path(__file__).resolve().parents[1]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


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
            frame = json.dumps({"id": job_id, "status": "IN_PROGRESS", "t": time.time()})
            publisher.publish(f"{prefix}jobev:{job_id}", frame)
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

    up_port, gw_port = free_port(), free_port()
    upstream, gateway = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{gw_port}"
    prefix = f"benchws:{os.getpid()}:"
    routing = Path(tempfile.mkdtemp()) / "routing.yaml"
    routing.write_text(
        f"upstream: {{base_url: '{upstream}/v2', api_key: bench}}\n"
        "surfaces:\n"
        "  embeddings: {default_model: e, models: {e: {endpoint_id: emb}}}\n"
        "  chat: {default_model: c, models: {c: {endpoint_id: chat}}}\n"
    )
    key = _issue_key(prefix)
    auth = {"authorization": f"Bearer {key}"}
    env = {"REDIS_URL": REDIS_URL, "DRYAPI_REDIS_PREFIX": prefix, "DRYAPI_PUBLIC_URL": gateway}
    uvicorn_args = [sys.executable, "-m", "uvicorn", "bench.fast_upstream:app", "--port", str(up_port),
                    "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    gateway_args = [sys.executable, "-m", "app", "serve", "--port", str(gw_port), "--routing", str(routing)]
    with _process(uvicorn_args, {}, f"{upstream}/"), _process(gateway_args, env, f"{gateway}/healthz"):
        enqueue_rps = 0.0
        if shutil.which("wrk"):
            body = {"input": "queue me"}
            enqueue_rps = _wrk(f"{gateway}/v1/embeddings", body, auth | {"prefer": "respond-async"}, args.duration)
        with httpx.Client(headers=auth | {"prefer": "respond-async"}) as client:
            job_ids = [
                client.post(f"{gateway}/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
                .json()["id"]
                for _ in range(args.jobs)
            ]
        pid = _gateway_pid(gw_port)
        time.sleep(1.0)
        rss_before = _rss_kib(pid)
        per_job = args.watchers // args.jobs
        stats = asyncio.run(
            _watchers(
                gateway.replace("http", "ws"), key, job_ids, per_job, args.rounds, prefix, args.interval_ms / 1000, pid
            )
        )
    watchers = per_job * args.jobs
    machine = f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores"
    print(f"\nmachine: {machine}, python {platform.python_version()}")
    print(f"| enqueue (Prefer: respond-async), 32 connections, one worker | {enqueue_rps:,.0f} req/s |")
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
