"""Realtime benchmark: many Pusher connections on one gateway worker, and event fan-out to them.

Starts one gateway worker (real Redis, the built-in Pusher server), opens ``--connections``
Pusher sockets spread over ``--clients`` API key channels (each subscribed with a valid
``auth``, signed here with the app secret as ``/broadcasting/auth`` would), measures the
worker's resident memory per connection, then publishes realtime events into Redis (as the
job tracker does) and measures publish-to-receive latency at every connection.

    python -m bench.pusher_bench [--connections 10000] [--clients 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import hmac
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from websockets.asyncio.client import ClientConnection, connect

from app.serving import free_port
from app.store import Keys
from bench.gateway_bench import REDIS_URL, _process
from bench.websocket_bench import _gateway_pid, _rss_kib

APP_KEY = "bench-app-key"
APP_SECRET = "bench-app-secret"


def _auth(socket_id: str, channel: str) -> str:
    digest = hmac.new(APP_SECRET.encode(), f"{socket_id}:{channel}".encode(), hashlib.sha256).hexdigest()
    return f"{APP_KEY}:{digest}"


async def _open(url: str, client_id: str) -> ClientConnection:
    socket = await connect(f"{url}/app/{APP_KEY}?protocol=7&client=bench&version=1",
                           open_timeout=60, ping_interval=None, max_queue=64)
    established = json.loads(await socket.recv())
    socket_id = json.loads(established["data"])["socket_id"]
    channel = f"private-client.{client_id}"
    await socket.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel,
                                                                        "auth": _auth(socket_id, channel)}}))
    reply = json.loads(await socket.recv())
    if reply["event"] != "pusher_internal:subscription_succeeded":
        raise RuntimeError(f"subscription refused: {reply}")
    return socket


async def _fanout(
    url: str, clients: list[str], per_client: int, rounds: int, prefix: str, interval_s: float, pid: int
) -> dict[str, float]:
    latencies: list[float] = []
    total = len(clients) * per_client
    gate = asyncio.Semaphore(256)
    done = asyncio.Event()
    sockets: list[ClientConnection] = []

    async def listen(client_id: str) -> None:
        async with gate:
            socket = await _open(url, client_id)
        sockets.append(socket)
        while not done.is_set():
            try:
                frame = await asyncio.wait_for(socket.recv(), timeout=1.0)
            except TimeoutError:
                continue
            sent = json.loads(json.loads(frame)["data"]).get("t")
            if sent:
                latencies.append(time.time() - sent)

    started = time.perf_counter()
    tasks = [asyncio.create_task(listen(client_id)) for client_id in clients for _ in range(per_client)]
    while len(sockets) < total:
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise RuntimeError(f"{len(failed)} connections failed, e.g. {failed[0].exception()!r}")
        if time.perf_counter() - started > 600:
            raise RuntimeError(f"only {len(sockets)} of {total} connections opened")
        await asyncio.sleep(0.2)
    stats = {"open_s": time.perf_counter() - started}
    # The measuring client holds every connection too: keep its own GC pauses out of the figures.
    gc.collect()
    gc.freeze()
    gc.disable()
    await asyncio.sleep(1.0)
    stats["rss_held"] = float(_rss_kib(pid))
    publisher = redis.Redis.from_url(REDIS_URL)
    keys = Keys(prefix)
    for _ in range(rounds):
        for client_id in clients:
            event = {"request_id": "bench", "status": "in_progress", "preview": None, "result_url": None,
                     "progress": "50.00", "t": time.time()}
            publisher.publish(keys.realtime_events(client_id), json.dumps(event))
            await asyncio.sleep(interval_s)
    deadline = time.monotonic() + 30
    while len(latencies) < total * rounds and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    stats["rss_fanout"] = float(_rss_kib(pid))
    done.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
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
def _gateway() -> Iterator[tuple[str, int, str]]:
    """One gateway worker with its own Redis prefix: (ws base URL, pid, prefix)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    prefix = f"benchpusher:{os.getpid()}:"
    routing = Path(tempfile.mkdtemp()) / "routing.yaml"
    routing.write_text("upstream: {base_url: 'http://127.0.0.1:9/v2', api_key: bench}\n"
                       "surfaces:\n  chat: {default_model: c, models: {c: {endpoint_id: chat}}}\n")
    env = {"REDIS_URL": REDIS_URL, "DRYAPI_REDIS_PREFIX": prefix, "DRYAPI_PUBLIC_URL": url,
           "DRYAPI_PUSHER_APP_KEY": APP_KEY, "DRYAPI_PUSHER_APP_SECRET": APP_SECRET}
    args = [sys.executable, "-m", "app", "serve", "--port", str(port), "--routing", str(routing)]
    with _process(args, env, f"{url}/healthz"):
        yield url.replace("http", "ws"), _gateway_pid(port), prefix


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=100, help="API key channels the connections spread over")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--interval-ms", type=float, default=20.0, help="pause between two events")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    clients = [f"bench{i}" for i in range(args.clients)]
    per_client = args.connections // args.clients
    with _gateway() as (url, pid, prefix):
        time.sleep(1.0)
        rss_before = _rss_kib(pid)
        stats = asyncio.run(_fanout(url, clients, per_client, args.rounds, prefix, args.interval_ms / 1000, pid))
    connections = per_client * args.clients
    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    print(f"| {connections:,} Pusher connections over {args.clients} channels: opened and subscribed in "
          f"| {stats['open_s']:.1f} s |")
    for label, rss in (("held idle", stats["rss_held"]), ("held, after the fan-out", stats["rss_fanout"])):
        print(f"| gateway RSS, connections {label} | {rss_before / 1024:.0f} MiB → {rss / 1024:.0f} MiB "
              f"({(rss - rss_before) / connections:.1f} KiB per connection) |")
    rate = per_client / (args.interval_ms / 1000)
    print(f"| fan-out latency publish→client at {rate:,.0f} events/s, p50 / p99 "
          f"| {stats['p50_ms']:.1f} ms / {stats['p99_ms']:.1f} ms "
          f"({int(stats['received']):,} of {int(stats['expected']):,} events) |")


if __name__ == "__main__":
    main()
