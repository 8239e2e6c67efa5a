"""Real Pusher client libraries against the gateway: pusher-js under Node, and pysher (Python).

Each authorises through ``POST /broadcasting/auth`` with its API key, subscribes to the key's
``private-client.{id}`` channel and receives a job's whole sequence to ``done``.
"""

from __future__ import annotations

import fcntl
import json
import queue
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pysher
import pytest

from tests.gateway.conftest import Gateway
from tests.realtime.conftest import APP_KEY

JS = Path(__file__).parent / "js"


@pytest.fixture(scope="session")
def node_client() -> Path:
    """``npm ci`` once (a file lock keeps parallel test workers from racing on node_modules)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.fail("the pusher-js tests need Node.js and npm on PATH")
    with (JS / ".npm-ci.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (JS / "node_modules" / "pusher-js").is_dir():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, timeout=300)
    return JS / "subscribe.js"


def _start_job(gateway: Gateway, key: str, prompt: str) -> str:
    response = httpx.post(
        f"{gateway.url}/v1/images/generations",
        json={"prompt": prompt},
        headers={"authorization": f"Bearer {key}", "prefer": "respond-async"},
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def _run_node(node_client: Path, gateway: Gateway, api_key: str, channel: str) -> subprocess.Popen[str]:
    netloc = urlsplit(gateway.url)
    args = [str(netloc.hostname), str(netloc.port), APP_KEY, f"{gateway.url}/broadcasting/auth", api_key, channel]
    return subprocess.Popen(
        ["node", str(node_client), *args], cwd=JS, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_pusher_js_receives_a_job_to_done(node_client: Path, replicas: tuple[Gateway, Gateway]) -> None:
    first, second = replicas
    owner = first.issue_key("js-owner")
    process = _run_node(node_client, first, owner.key, f"private-client.{owner.id}")
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline() or "{}")
        assert "subscribed" in ready, process.stderr.read() if process.stderr else ready
        job_id = _start_job(second, owner.key, "a js lighthouse")  # the other replica runs the job
        events = [json.loads(line)["event"] for line in process.stdout]
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    assert [e["status"] for e in events] == ["processing", "in_progress", "done"]
    assert {e["request_id"] for e in events} == {job_id}
    assert events[1]["progress"] == "45.50"
    assert httpx.get(events[2]["result_url"]).json()["status"] == "COMPLETED"


def test_pusher_js_cannot_subscribe_to_another_keys_channel(node_client: Path, gateway: Gateway) -> None:
    mine, theirs = gateway.issue_key("js-mine"), gateway.issue_key("js-theirs")
    process = _run_node(node_client, gateway, mine.key, f"private-client.{theirs.id}")
    out, _ = process.communicate(timeout=30)
    assert json.loads(out.splitlines()[0]) == {"subscription_error": 403}


def test_pysher_receives_a_job_to_done(gateway: Gateway) -> None:
    owner = gateway.issue_key("py-owner")
    netloc = urlsplit(gateway.url)
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    client = pysher.Pusher(
        APP_KEY,
        secure=False,
        custom_host=str(netloc.hostname),
        port=int(netloc.port or 80),
        auth_endpoint=f"{gateway.url}/broadcasting/auth",
        auth_endpoint_headers={"Authorization": f"Bearer {owner.key}"},
        reconnect_interval=1,
    )

    def on_connect(_: Any) -> None:
        channel = client.subscribe(f"private-client.{owner.id}")
        channel.bind("request.status.updated", lambda data: events.put(json.loads(data)))
        channel.bind("pusher_internal:subscription_succeeded", lambda _data: subscribed.put(True))

    client.connection.bind("pusher:connection_established", on_connect)
    client.connect()
    try:
        assert subscribed.get(timeout=10)
        job_id = _start_job(gateway, owner.key, "a python lighthouse")
        received = [events.get(timeout=20)]
        while received[-1]["status"] not in ("done", "error"):
            received.append(events.get(timeout=20))
    finally:
        client.disconnect(timeout=5)
    assert [e["status"] for e in received] == ["processing", "in_progress", "done"]
    assert {e["request_id"] for e in received} == {job_id}
    assert received[-1]["result_url"]
