"""Client webhooks from async jobs: signed per key, retried, and durable across a SIGKILL."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.webhooks import WebhookSettings
from tests.gateway.conftest import Gateway, start_gateway, unique
from tests.support.servers import ServerThread, free_port
from tests.webhooks.receiver import Arrival, Receiver

ROOT = Path(__file__).resolve().parents[2]
FAST = WebhookSettings(schedule=(0, 0.3, 0.3, 0.3), timeout_s=2)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    hooks = Receiver()
    server = ServerThread(hooks).start()
    yield hooks, server.url
    server.stop()


@pytest.fixture(scope="module")
def hooked(emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    gw = start_gateway(
        f"{emulator.url}/v2", redis_url, f"{redis_prefix}hooks-{unique()}:",
        webhook_allowlist=frozenset({"127.0.0.1"}), webhooks=FAST,
    )
    yield gw
    gw.server.stop()


def _expected_signature(secret: str, arrival: Arrival) -> str:
    message = f"{arrival.headers['x-dryapi-timestamp']}.".encode() + arrival.body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _wait_for(hooks: Receiver, token: str, count: int, timeout: float = 15) -> list[Arrival]:
    deadline = time.monotonic() + timeout
    while len([a for a in hooks.at(token) if a.status == 200]) < count:
        assert time.monotonic() < deadline, [(a.headers.get("x-dryapi-event"), a.status) for a in hooks.at(token)]
        time.sleep(0.05)
    return [a for a in hooks.at(token) if a.status == 200]


def _enqueue(gw: Gateway, key: str, path: str, body: dict[str, Any]) -> str:
    response = httpx.post(f"{gw.url}{path}", json=body, headers={"authorization": f"Bearer {key}"}, timeout=10)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_completed_job_sends_a_signed_webhook_with_a_result_link(
    hooked: Gateway, receiver: tuple[Receiver, str]
) -> None:
    hooks, base = receiver
    tenant_a, tenant_b = hooked.issue_key("a"), hooked.issue_key("b")
    token = unique()
    job_id = _enqueue(hooked, tenant_a.key, "/v1/embeddings", {"input": "hook me", "webhook_url": f"{base}/{token}/ok"})
    arrivals = _wait_for(hooks, token, 1)
    completed = [a for a in arrivals if a.headers["x-dryapi-event"] == "job.completed"]
    deadline = time.monotonic() + 10
    while not completed:
        assert time.monotonic() < deadline
        time.sleep(0.05)
        completed = [a for a in hooks.at(token) if a.headers.get("x-dryapi-event") == "job.completed"]
    hook = completed[0]
    assert hook.headers["user-agent"] == "DryAPI-Webhook/1.0"
    assert hook.headers["content-type"] == "application/json"
    assert hook.headers["x-dryapi-signature"] == _expected_signature(tenant_a.webhook_secret, hook)
    assert hook.headers["x-dryapi-signature"] != _expected_signature(tenant_b.webhook_secret, hook)
    payload = json.loads(hook.body)
    assert payload["event"] == "job.completed" and payload["delivery_id"] == hook.headers["x-dryapi-delivery-id"]
    data = payload["data"]
    assert data["job_request_id"] == job_id and data["status"] == "done" and data["job_type"] == "embeddings"
    assert isinstance(data["processing_time_ms"], int)
    result = httpx.get(data["result_url"])  # no API key: the link is signed
    assert result.status_code == 200 and result.json()["output"]["object"] == "list"


def test_failed_and_cancelled_jobs_send_job_failed(hooked: Gateway, receiver: tuple[Receiver, str]) -> None:
    hooks, base = receiver
    tenant = hooked.issue_key("failing")
    token = unique()
    _enqueue(hooked, tenant.key, "/v1/chat/completions",
             {"messages": [{"role": "user", "content": "crash"}], "webhook_url": f"{base}/{token}/ok"})
    slow = _enqueue(hooked, tenant.key, "/v1/images/generations",
                    {"prompt": "slow 5", "webhook_url": f"{base}/{token}/ok"})
    httpx.post(f"{hooked.url}/v1/jobs/images/{slow}/cancel", headers={"authorization": f"Bearer {tenant.key}"})
    deadline = time.monotonic() + 15
    while True:
        events = [a for a in hooks.at(token) if a.headers.get("x-dryapi-event") == "job.failed"]
        failed = [json.loads(a.body)["data"] for a in events]
        if len(failed) >= 2:
            break
        assert time.monotonic() < deadline, failed
        time.sleep(0.05)
    codes = sorted(d["error_code"] for d in failed)
    assert codes == ["CANCELLED", "PROCESSING_ERROR"]
    assert all(d["status"] == "error" for d in failed)


def test_failing_receiver_is_retried_with_the_same_delivery_id(
    hooked: Gateway, receiver: tuple[Receiver, str]
) -> None:
    hooks, base = receiver
    tenant = hooked.issue_key("flaky")
    token = unique()
    _enqueue(hooked, tenant.key, "/v1/embeddings", {"input": "retry", "webhook_url": f"{base}/{token}/fail2"})
    deadline = time.monotonic() + 15
    while True:
        completed = [a for a in hooks.at(token) if a.headers.get("x-dryapi-event") == "job.completed"]
        if any(a.status == 200 for a in completed):
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [a.status for a in completed] == [500, 500, 200]
    assert len({a.headers["x-dryapi-delivery-id"] for a in completed}) == 1
    assert len({a.body for a in completed}) == 1


@pytest.mark.process
def test_deliveries_survive_a_sigkilled_gateway(
    emulator: ServerThread, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    """Deliveries pending when the gateway is SIGKILLed arrive once each after a restart."""
    hooks = Receiver()
    receiver_server = ServerThread(hooks).start()
    prefix = f"{redis_prefix}kill-{unique()}:"
    routing = tmp_path / "routing.yaml"
    routing.write_text(
        f"upstream: {{base_url: '{emulator.url}/v2', api_key: rp-test-key}}\n"
        "surfaces:\n  embeddings: {default_model: e, models: {e: {endpoint_id: emb-ep}}}\n"
    )
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DRYAPI_REDIS_PREFIX": prefix,
        "DRYAPI_WEBHOOK_ALLOWLIST": "127.0.0.1",
        "DRYAPI_WEBHOOK_RETRY_SCHEDULE": "0,1.5,1.5,1.5,1.5",
        "DRYAPI_SIGNING_SECRET": "kill-test-secret",
        "DRYAPI_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    key = json.loads(subprocess.run(
        [sys.executable, "-m", "app", "keys", "create", "--name", "k", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()[-1])["key"]

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port), "--routing", str(routing)],
                                cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)

    token = unique()
    gateway = start()
    try:
        for i in range(5):
            response = httpx.post(
                f"http://127.0.0.1:{port}/v1/embeddings",
                json={"input": f"durable {i}", "webhook_url": f"{receiver_server.url}/{token}/fail1"},
                headers={"authorization": f"Bearer {key}"},
            )
            assert response.status_code == 202, response.text
        deadline = time.monotonic() + 15
        while len({a.delivery_id for a in hooks.at(token) if a.headers.get("x-dryapi-event") == "job.completed"}) < 5:
            assert time.monotonic() < deadline, "first attempts did not arrive"
            time.sleep(0.05)
        gateway.send_signal(signal.SIGKILL)  # every delivery now waits for its retry in Redis
        gateway.wait()
        gateway = start()
        deadline = time.monotonic() + 20
        while True:
            ok = [a for a in hooks.at(token) if a.status == 200 and a.headers.get("x-dryapi-event") == "job.completed"]
            if len(ok) >= 5:
                break
            assert time.monotonic() < deadline, len(ok)
            time.sleep(0.1)
        time.sleep(2)  # nothing may arrive twice
        ok = [a for a in hooks.at(token) if a.status == 200 and a.headers.get("x-dryapi-event") == "job.completed"]
        assert len(ok) == 5 and len({a.delivery_id for a in ok}) == 5
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
        receiver_server.stop()
