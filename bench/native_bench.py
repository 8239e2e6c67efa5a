"""Native task API overhead: submit throughput against /v1 async enqueue, and request-status latency.

Starts ``bench/fast_upstream.py`` and one gateway worker (auth on, real Redis), then in one run:
``wrk -t1 -c32`` on ``POST /v1/embeddings`` with ``Prefer: respond-async`` and on
``POST /api/v1/client/txt2embedding`` (both a RunPod ``/run``, a job record, an answer), and
sequential ``GET request-status/{id}`` of a running job against RunPod's ``/status`` direct.

    python -m bench.native_bench [--duration 10] [--requests 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx

from app.serving import free_port
from bench.gateway_bench import _percentiles, _process, _wrk
from bench.websocket_bench import _gateway


def _get_latency(url: str, headers: dict[str, str], n: int) -> tuple[float, float]:
    with httpx.Client(headers=headers, timeout=10) as client:
        for _ in range(min(200, n)):
            client.get(url).raise_for_status()
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            client.get(url).raise_for_status()
            samples.append((time.perf_counter() - start) * 1000)
    return _percentiles(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    routing = Path(tempfile.mkdtemp()) / "routing.yaml"
    routing.write_text(
        f"upstream: {{base_url: '{upstream}/v2', api_key: bench}}\n"
        "surfaces:\n"
        "  embeddings: {default_model: e, models: {e: {endpoint_id: emb, inference_types: [txt2embedding]}}}\n"
    )
    uvicorn_args = [sys.executable, "-m", "uvicorn", "bench.fast_upstream:app", "--port", str(up_port),
                    "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    with _process(uvicorn_args, {}, f"{upstream}/"), _gateway(routing, "native") as (gateway, key, _, _):
        auth = {"authorization": f"Bearer {key}"}
        v1 = _wrk(f"{gateway}/v1/embeddings", {"input": "queue me"}, {**auth, "prefer": "respond-async"},
                  args.duration)[0]
        native = _wrk(f"{gateway}/api/v1/client/txt2embedding", {"model": "e", "input": "queue me"}, auth,
                      args.duration)[0]
        submitted = httpx.post(f"{gateway}/api/v1/client/txt2embedding", json={"model": "e", "input": "x"},
                               headers=auth).json()["data"]["request_id"]
        d50, d99 = _get_latency(f"{upstream}/v2/emb/status/{submitted}", {}, args.requests)
        g50, g99 = _get_latency(f"{gateway}/api/v1/client/request-status/{submitted}", auth, args.requests)
    machine = f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores"
    print(f"\nmachine: {machine}, python {platform.python_version()}")
    print("| measure | /v1 async enqueue | native submit | native / v1 |\n|---|---|---|---|")
    print(f"| 32 connections, one worker, req/s | {v1:,.0f} | {native:,.0f} | {native / v1:.0%} |")
    print("\n| request-status of a running job, ms | direct /status | gateway | overhead |\n|---|---|---|---|")
    print(f"| p50 | {d50:.2f} | {g50:.2f} | {g50 - d50:.2f} |\n| p99 | {d99:.2f} | {g99:.2f} | {g99 - d99:.2f} |")


if __name__ == "__main__":
    main()
