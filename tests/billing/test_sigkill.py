"""Real gateway processes on one Redis. The one that took a paid job is SIGKILLed before the job
ends: the other settles it, once, and the key's money is exactly right. The one that held money
is SIGKILLed while RunPod's /run has not answered: the survivors refund that hold, once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from litestar import post

from app.billing.ledger import STALE_NOTE, Ledger, LedgerEntry
from app.emulator import EmulatorEndpoint, create_emulator_app
from app.keys import KeyStore
from app.store import Keys, create_redis
from tests.gateway.conftest import ADMIN_KEY, RUNPOD_KEY
from tests.support.servers import ServerThread, free_port, stub_app

pytestmark = pytest.mark.process  # starts gateway processes

ROOT = Path(__file__).resolve().parents[2]
ROUTING = """
upstream: {{base_url: "{upstream}", api_key: "{key}"}}
surfaces:
  video:
    mode: async
    models:
      Ltxv_13B_0_9_8_Distilled_FP8:
        endpoint_id: slow-ep
        inference_types: [txt2video]
        pricing: {{usd: 0.001737, per: {{seconds: 2, pixels: 65536}}}}
billing: {{enabled: true, initial_balance_usd: 5.0}}
"""
JOB = {"model": "Ltxv_13B_0_9_8_Distilled_FP8", "prompt": "slow:3", "width": 256, "height": 256, "frames": 48,
       "fps": 24, "steps": 1}


@contextmanager
def gateway(routing: Path, log: Path, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port), "--routing", str(routing)],
            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def _entries(redis_url: str, prefix: str, key_id: str) -> list[LedgerEntry]:
    async def read() -> list[LedgerEntry]:
        redis = create_redis(redis_url)
        try:
            return await Ledger(redis, Keys(prefix), initial_micro=5_000_000, ttl_days=1).entries(key_id)
        finally:
            await redis.aclose()

    return asyncio.run(read())


def test_a_sigkilled_gateways_job_is_settled_by_the_other(redis_url: str, redis_prefix: str, tmp_path: Path) -> None:
    emulator = ServerThread(create_emulator_app(
        {"slow-ep": EmulatorEndpoint(handler="tests.billing.workers:slow_media", concurrency=2)}, api_key=RUNPOD_KEY,
    )).start()
    prefix = f"{redis_prefix}sigkill:"
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING.format(upstream=f"{emulator.url}/v2", key=RUNPOD_KEY))
    env = {"REDIS_URL": redis_url, "DRYAPI_REDIS_PREFIX": prefix, "DRYAPI_ADMIN_KEY": ADMIN_KEY,
           "DRYAPI_SIGNING_SECRET": "sigkill-test-secret", "DRYAPI_ROUTING_POLL_S": "0"}

    async def issue() -> tuple[str, str]:
        redis = create_redis(redis_url)
        try:
            issued = await KeyStore(redis, Keys(prefix)).create("sigkill")
            return issued.key, issued.id
        finally:
            await redis.aclose()

    key, key_id = asyncio.run(issue())
    try:
        with ExitStack() as stack:
            first, first_proc = stack.enter_context(gateway(routing, tmp_path / "first.log", env))
            second, _ = stack.enter_context(gateway(routing, tmp_path / "second.log", env))
            headers = {"Authorization": f"Bearer {key}"}
            submitted = httpx.post(f"{first}/api/v1/client/txt2video", json=JOB, headers=headers, timeout=30)
            assert submitted.status_code == 200, submitted.text
            request_id = submitted.json()["data"]["request_id"]
            first_proc.send_signal(signal.SIGKILL)  # its callback URL is dead: RunPod's report reaches no one
            first_proc.wait(timeout=10)
            deadline = time.monotonic() + 60
            while not any(e.kind == "settle" for e in _entries(redis_url, prefix, key_id)):
                assert time.monotonic() < deadline, (tmp_path / "second.log").read_text()[-3000:]
                time.sleep(0.25)
            time.sleep(1.0)  # a second settlement, were there one, would land now
            kinds = [(e.kind, e.amount) for e in _entries(redis_url, prefix, key_id)]
            assert kinds == [("hold", 1737), ("settle", 1737)]
            balance = httpx.get(f"{second}/api/v1/client/balance", headers=headers, timeout=10).json()
            assert balance["data"]["balance"] == round(5.0 - 0.001737, 6)
            status = httpx.get(f"{second}/api/v1/client/request-status/{request_id}", headers=headers, timeout=10)
            assert status.json()["data"]["status"] == "done"
    finally:
        emulator.stop()


STALLED_ROUTING = """
upstream: {{base_url: "{upstream}", api_key: "{key}", request_timeout_s: {timeout_s}}}
surfaces:
  images:
    sync_timeout_s: 1
    models:
      Flux1schnell:
        endpoint_id: stalled-ep
        inference_types: [txt2img]
        pricing: {{usd: 0.00136, per: {{pixels: 262144, steps: 4}}}}
billing: {{enabled: true, initial_balance_usd: 5.0, stale_hold_s: {stale_hold_s}}}
"""
IMAGE = {"model": "Flux1schnell", "prompt": "a lighthouse", "width": 512, "height": 512, "steps": 4, "seed": 1}


def _stalled_runpod(released: threading.Event) -> ServerThread:
    """RunPod whose /run never answers: a gateway waiting on it has held money for no job yet."""

    @post("/v2/{endpoint:str}/run", status_code=200)
    async def run(endpoint: str) -> dict[str, str]:
        while not released.is_set():
            await asyncio.sleep(0.05)
        return {"id": "never", "status": "IN_QUEUE"}

    return ServerThread(stub_app(run)).start()


def test_a_hold_left_by_a_gateway_killed_before_run_is_refunded_once(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    released = threading.Event()
    upstream = _stalled_runpod(released)
    prefix = f"{redis_prefix}stalehold:"
    env = {"REDIS_URL": redis_url, "DRYAPI_REDIS_PREFIX": prefix, "DRYAPI_ADMIN_KEY": ADMIN_KEY,
           "DRYAPI_SIGNING_SECRET": "stale-hold-test-secret", "DRYAPI_ROUTING_POLL_S": "0"}
    routings = {}
    # The dying gateway waits on /run for minutes; the survivors call no upstream.
    for name, timeout_s, grace in (("dying", 300, 600), ("survivors", 1, 2)):
        routings[name] = tmp_path / f"{name}.yaml"
        routings[name].write_text(STALLED_ROUTING.format(upstream=f"{upstream.url}/v2", key=RUNPOD_KEY,
                                                         timeout_s=timeout_s, stale_hold_s=grace))

    async def issue() -> tuple[str, str]:
        redis = create_redis(redis_url)
        try:
            issued = await KeyStore(redis, Keys(prefix)).create("stale-hold")
            return issued.key, issued.id
        finally:
            await redis.aclose()

    key, key_id = asyncio.run(issue())
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with ExitStack() as stack:
            dying, dying_proc = stack.enter_context(gateway(routings["dying"], tmp_path / "dying.log", env))

            def post_image() -> None:
                with contextlib.suppress(httpx.HTTPError):  # its gateway dies mid-request
                    httpx.post(f"{dying}/api/v1/client/txt2img", json=IMAGE, headers=headers, timeout=60)

            submit = threading.Thread(target=post_image, daemon=True)
            submit.start()
            deadline = time.monotonic() + 30
            while not _entries(redis_url, prefix, key_id):  # held, and stuck in /run
                assert time.monotonic() < deadline, (tmp_path / "dying.log").read_text()[-3000:]
                time.sleep(0.05)
            dying_proc.send_signal(signal.SIGKILL)
            dying_proc.wait(timeout=10)
            # Two surviving replicas, both sweeping: the hold is refunded once, by one of them.
            first, _ = stack.enter_context(gateway(routings["survivors"], tmp_path / "first.log", env))
            stack.enter_context(gateway(routings["survivors"], tmp_path / "second.log", env))
            deadline = time.monotonic() + 30
            while not any(e.kind == "refund" for e in _entries(redis_url, prefix, key_id)):
                assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
                time.sleep(0.25)
            time.sleep(2.0)  # a second refund, were there one, would land now
            entries = _entries(redis_url, prefix, key_id)
            assert [(e.kind, e.amount, e.refunded, e.note) for e in entries] == [
                ("hold", 1360, None, None), ("refund", 0, 1360, STALE_NOTE)]
            assert entries[1].job_id == entries[0].job_id
            balance = httpx.get(f"{first}/api/v1/client/balance", headers=headers, timeout=10).json()
            assert balance["data"]["balance"] == 5.0
    finally:
        released.set()
        upstream.stop()
