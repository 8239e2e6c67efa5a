"""Gateway overhead benchmark: added latency, streaming time-to-first-chunk, throughput.

Starts ``bench/fast_upstream.py`` (an instant RunPod-compatible upstream) and one gateway
worker with auth on (a real key in a real Redis), then measures each path both directly
against the upstream and through the gateway, in one run, so the figures are comparable.

    python -m bench.gateway_bench [--requests 3000] [--duration 10]

Needs ``wrk`` for the throughput figures (Debian package ``wrk``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.serving import free_port

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
EMBED_BODY = {"model": "bench-embed", "input": "the quick brown fox jumps over the lazy dog"}
CHAT_BODY = {"model": "bench-chat", "messages": [{"role": "user", "content": "hi"}]}


@contextmanager
def _process(args: list[str], env: dict[str, str], ready: str) -> Iterator[subprocess.Popen[bytes]]:
    # Server logs go to a file (named on stderr) so a failed run can be diagnosed.
    log = tempfile.NamedTemporaryFile("wb", prefix="bench-", suffix=".log", delete=False)  # noqa: SIM115
    print(f"{args[2] if len(args) > 2 else args[0]} logs: {log.name}", file=sys.stderr)
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(ready, timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{args[0]} did not start") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]


def _latency(url: str, body: Mapping[str, object], headers: dict[str, str], n: int) -> tuple[float, float]:
    with httpx.Client(headers=headers, timeout=10) as client:
        for _ in range(min(300, n)):
            client.post(url, json=body).raise_for_status()
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            client.post(url, json=body).raise_for_status()
            samples.append((time.perf_counter() - start) * 1000)
    return _percentiles(samples)


def _ttfc(url: str, headers: dict[str, str], n: int) -> tuple[float, float]:
    body = {**CHAT_BODY, "stream": True}
    samples = []
    with httpx.Client(headers=headers, timeout=10) as client:
        for i in range(n + 50):
            start = time.perf_counter()
            with client.stream("POST", url, json=body) as response:
                first = True
                for _ in response.iter_raw():
                    if first and i >= 50:
                        samples.append((time.perf_counter() - start) * 1000)
                    first = False  # keep reading so the connection is reused
    return _percentiles(samples)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_percentile(out: str, percent: str) -> float:
    match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    return float(match.group(1)) * _UNITS_MS[match.group(2)] if match else 0.0


def _wrk(url: str, body: Mapping[str, object], headers: dict[str, str], seconds: int) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) at 32 connections."""
    script = f"wrk.method = 'POST'\nwrk.body = [[{json.dumps(body)}]]\n"
    script += "wrk.headers['Content-Type'] = 'application/json'\n"
    script += "".join(f"wrk.headers['{k}'] = '{v}'\n" for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", handle.name, url],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise RuntimeError(f"wrk saw {non_2xx.group(1)} failed responses:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rps = float(match.group(1)) if match else 0.0
    return rps, _wrk_percentile(out, "50"), _wrk_percentile(out, "99")


def _issue_key(prefix: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "app", "keys", "create", "--name", "bench", "--json"],
        cwd=ROOT, env={**os.environ, "REDIS_URL": REDIS_URL, "DRYAPI_REDIS_PREFIX": prefix},
        capture_output=True, text=True, check=True,
    ).stdout
    key: str = json.loads(out.strip().splitlines()[-1])["key"]
    return key


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--stream-requests", type=int, default=500)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()

    up_port, gw_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    gateway = f"http://127.0.0.1:{gw_port}"
    prefix = f"bench:{os.getpid()}:"
    routing = Path(tempfile.mkdtemp()) / "routing.yaml"
    routing.write_text(
        f"upstream: {{base_url: '{upstream}/v2', api_key: bench}}\n"
        "surfaces:\n"
        "  embeddings: {models: {bench-embed: {endpoint_id: emb}}}\n"
        "  chat: {models: {bench-chat: {endpoint_id: chat}}}\n"
    )
    key = _issue_key(prefix)
    auth = {"authorization": f"Bearer {key}"}
    env = {"REDIS_URL": REDIS_URL, "DRYAPI_REDIS_PREFIX": prefix}
    uvicorn_args = [sys.executable, "-m", "uvicorn", "bench.fast_upstream:app", "--port", str(up_port),
                    "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    gateway_args = [sys.executable, "-m", "app", "serve", "--port", str(gw_port), "--routing", str(routing)]
    with _process(uvicorn_args, {}, f"{upstream}/"), _process(gateway_args, env, f"{gateway}/healthz"):
        direct_embed = f"{upstream}/v2/emb/openai/v1/embeddings"
        direct_chat = f"{upstream}/v2/chat/openai/v1/chat/completions"
        rows = []
        for name, direct, via, body in (
            ("embeddings", direct_embed, f"{gateway}/v1/embeddings", EMBED_BODY),
            ("chat", direct_chat, f"{gateway}/v1/chat/completions", CHAT_BODY),
        ):
            d50, d99 = _latency(direct, body, {}, args.requests)
            g50, g99 = _latency(via, body, auth, args.requests)
            rows.append((f"sync {name} latency ms", d50, d99, g50, g99))
        d50, d99 = _ttfc(direct_chat, {}, args.stream_requests)
        g50, g99 = _ttfc(f"{gateway}/v1/chat/completions", auth, args.stream_requests)
        rows.append(("stream time-to-first-chunk ms", d50, d99, g50, g99))
        direct_load = gateway_load = (0.0, 0.0, 0.0)
        if shutil.which("wrk"):
            direct_load = _wrk(direct_embed, EMBED_BODY, {}, args.duration)
            gateway_load = _wrk(f"{gateway}/v1/embeddings", EMBED_BODY, auth, args.duration)

    machine = f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores"
    print(f"\nmachine: {machine}, python {platform.python_version()}")
    print(f"{args.requests} sequential requests per latency row\n")
    print("| measure | direct p50 | direct p99 | gateway p50 | gateway p99 | added p50 | added p99 |")
    print("|---|---|---|---|---|---|---|")
    for name, d50, d99, g50, g99 in rows:
        print(f"| {name} | {d50:.2f} | {d99:.2f} | {g50:.2f} | {g99:.2f} | {g50 - d50:.2f} | {g99 - d99:.2f} |")
    if gateway_load[0]:
        (rps_d, d50, d99), (rps_g, g50, g99) = direct_load, gateway_load
        print(f"\n| throughput, sync embeddings, 32 connections, one worker | direct {rps_d:,.0f} req/s "
              f"| gateway {rps_g:,.0f} req/s |")
        print(f"| latency at 32 connections, p50 / p99 ms | direct {d50:.2f} / {d99:.2f} | gateway {g50:.2f} / "
              f"{g99:.2f} | overhead {g50 - d50:.2f} / {g99 - d99:.2f} |")


if __name__ == "__main__":
    main()
