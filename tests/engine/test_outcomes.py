"""A finished job means the same on every path: sync answers and async job bodies agree."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import Gateway, start_gateway, unique
from tests.support.servers import ServerThread

# A 5 s execution timeout (RunPod's smallest here) and a sync wait longer than that.
ROUTING = """
upstream: {{base_url: "{upstream}", api_key: "rp-test-key"}}
surfaces:
  images:
    default_model: tiny-image
    sync_timeout_s: 15
    policy: {{execution_timeout_s: 5}}
    models:
      tiny-image: {{endpoint_id: img-ep}}
"""
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")


def _job(gateway: Gateway, key: str, job_id: str) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 20
    while True:
        body: dict[str, Any] = httpx.get(f"{gateway.url}/v1/jobs/images/{job_id}", headers=headers).json()
        if body["status"] in TERMINAL:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


@pytest.mark.slow
def test_timed_out_and_cancelled_jobs_carry_one_code_sync_and_async(
    emulator: ServerThread, redis_url: str, redis_prefix: str
) -> None:
    routing = ROUTING.format(upstream=f"{emulator.url}/v2")
    gw = start_gateway(f"{emulator.url}/v2", redis_url, f"{redis_prefix}outcome-{unique()}:", routing=routing)
    try:
        key = gw.issue_key("outcomes").key
        headers = {"authorization": f"Bearer {key}"}
        url = f"{gw.url}/v1/images/generations"
        queued = httpx.post(url, headers=headers | {"prefer": "respond-async"}, json={"prompt": "slow 9"})
        sync = httpx.post(url, headers=headers, json={"prompt": "slow 9"}, timeout=30)
        assert sync.status_code == 504, sync.text
        sync_error = sync.json()["error"]
        async_body = _job(gw, key, queued.json()["id"])
        assert async_body["status"] == "TIMED_OUT"
        assert async_body["error"]["code"] == sync_error["code"] == "worker_timeout"
        assert async_body["error"]["type"] == sync_error["type"]

        cancelled = httpx.post(url, headers=headers | {"prefer": "respond-async"}, json={"prompt": "slow 9"})
        job_id = cancelled.json()["id"]
        httpx.post(f"{gw.url}/v1/jobs/images/{job_id}/cancel", headers=headers)
        body = _job(gw, key, job_id)
        assert (body["status"], body["error"]["code"]) == ("CANCELLED", "job_cancelled")
    finally:
        gw.server.stop()
