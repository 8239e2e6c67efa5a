"""Webhook callbacks with retries, API-key auth, handler loading and import failures."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.emulator import EmulatorEndpoint, load_handler
from tests.emulator import workers
from tests.emulator.helpers import health, new_gate, open_gate, poll, run, running, status
from tests.support.servers import serve


class Receiver:
    """A real HTTP webhook receiver: answers 500 to the first ``failures`` posts per job."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[float, dict[str, Any], str]] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        payload = json.loads(body)
        headers = dict(scope["headers"])
        with self._lock:
            earlier = sum(1 for _, p, _ in self.calls if p["id"] == payload["id"])
            self.calls.append((time.monotonic(), payload, headers[b"content-type"].decode()))
        code = 500 if earlier < self.failures else 200
        await send({"type": "http.response.start", "status": code, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def for_job(self, job_id: str) -> list[tuple[float, dict[str, Any], str]]:
        with self._lock:
            return [call for call in self.calls if call[1]["id"] == job_id]


@pytest.fixture(scope="module")
def webhook_rp() -> Iterator[httpx.Client]:
    endpoints = {"e": EmulatorEndpoint(handler=workers.echo, concurrency=2), "boom": EmulatorEndpoint(workers.boom)}
    with running(endpoints, webhook_retry_delay_s=0.1) as client:
        yield client


def test_webhook_is_retried_until_taken(webhook_rp: httpx.Client) -> None:
    receiver = Receiver(failures=1)
    with serve(receiver) as hook:
        job_id = run(webhook_rp, "e", {"q": 1}, webhook=f"{hook.url}/cb?sig=abc")
        calls = poll(lambda: receiver.for_job(job_id), lambda c: len(c) >= 2)
        time.sleep(0.25)  # no third attempt once one succeeded
        calls = receiver.for_job(job_id)
    assert len(calls) == 2 and calls[1][0] - calls[0][0] >= 0.09
    payload = calls[1][1]
    assert payload == calls[0][1] and calls[0][2] == "application/json"
    assert payload["status"] == "COMPLETED" and payload["output"] == {"echo": {"q": 1}}
    assert payload["input"] == {"q": 1}  # RunPod's cloud payload carries the input
    assert {"delayTime", "executionTime", "workerId", "retries"} <= set(payload)


def test_webhook_gives_up_after_three_attempts_and_failed_jobs_call_too(webhook_rp: httpx.Client) -> None:
    receiver = Receiver(failures=99)
    with serve(receiver) as hook:
        job_id = run(webhook_rp, "boom", {}, webhook=hook.url)
        poll(lambda: receiver.for_job(job_id), lambda c: len(c) >= 3)
        time.sleep(0.3)
        calls = receiver.for_job(job_id)
    assert len(calls) == 3 and calls[0][1]["status"] == "FAILED" and isinstance(calls[0][1]["error"], str)


def test_webhook_to_nowhere_does_not_block_jobs(webhook_rp: httpx.Client) -> None:
    job_id = run(webhook_rp, "e", {}, webhook="http://127.0.0.1:9/unreachable")
    assert poll(lambda: status(webhook_rp, "e", job_id), lambda b: b["status"] == "COMPLETED")
    assert webhook_rp.post("/e/runsync", json={"input": {"n": 2}}).json()["status"] == "COMPLETED"


def test_api_key_is_required_when_set() -> None:
    endpoints = {"e": EmulatorEndpoint(handler=workers.echo), "ai": EmulatorEndpoint(handler=workers.embeddings)}
    with running(endpoints, api_key="sekret") as client:
        job: dict[str, Any] = {"input": {}}
        assert client.post("/e/runsync", json=job).status_code == 401
        assert client.post("/e/runsync", json=job, headers={"authorization": "Bearer nope"}).status_code == 401
        assert client.get("/e/health").status_code == 401
        assert client.post("/ai/openai/v1/embeddings", json={"model": "m"}).status_code == 401
        assert "error" in client.get("/e/health").json()
        for header in ("sekret", "Bearer sekret", "bearer sekret"):
            response = client.post("/e/runsync", json=job, headers={"authorization": header})
            assert response.status_code == 200 and response.json()["status"] == "COMPLETED"


def test_import_failure_fails_jobs_and_spares_other_endpoints() -> None:
    endpoints = {
        "broken": EmulatorEndpoint(handler="tests.emulator.no_such_module:handler"),
        "ok": EmulatorEndpoint(handler="tests.emulator.workers:echo"),
    }
    with running(endpoints, preload=True) as client:
        body = client.post("/broken/runsync", json={"input": {}}).json()
        assert body["status"] == "FAILED" and "output" not in body
        info = json.loads(body["error"])
        assert info["error_type"] == "<class 'ModuleNotFoundError'>" and "no_such_module" in info["error_message"]
        assert client.post("/broken/runsync", json={"input": {}}).json()["status"] == "FAILED"
        assert client.post("/ok/runsync", json={"input": {"a": 1}}).json()["output"] == {"echo": {"a": 1}}


def test_preload_loads_handlers_at_startup_with_their_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # handler modules resolve from the working directory
    monkeypatch.delenv("EMU_TEST_FLAVOUR", raising=False)
    (tmp_path / "emu_preload_mod.py").write_text(
        "import os\nFLAVOUR = os.environ['EMU_TEST_FLAVOUR']\ndef handler(job):\n    return {'flavour': FLAVOUR}\n"
    )
    endpoints = {"p": EmulatorEndpoint(handler="emu_preload_mod:handler", concurrency=3, env={"EMU_TEST_FLAVOUR": "x"})}
    try:
        with running(endpoints, preload=True) as client:
            poll(lambda: health(client, "p")["workers"]["ready"], lambda ready: ready == 3)
            assert "emu_preload_mod" in sys.modules  # loaded before any job
            assert client.post("/p/runsync", json={"input": {}}).json()["output"] == {"flavour": "x"}
    finally:
        sys.modules.pop("emu_preload_mod", None)


def test_load_handler_resolves_module_function() -> None:
    assert load_handler("tests.emulator.workers:echo") is workers.echo
    with pytest.raises(ValueError, match="module:function"):
        load_handler("tests.emulator.workers")
    with pytest.raises(AttributeError, match="nope"):
        load_handler("tests.emulator.workers:nope")
    with pytest.raises(TypeError):
        load_handler("tests.emulator.workers:GATE_TIMEOUT_S")


def test_endpoint_config_is_validated() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        EmulatorEndpoint(handler=workers.echo, concurrency=0)
    with pytest.raises(ValueError, match="module:function"):
        EmulatorEndpoint(handler="no-colon")


def test_shutdown_with_work_in_flight_is_clean() -> None:
    endpoints = {"e": EmulatorEndpoint(handler=workers.echo), "a": EmulatorEndpoint(handler=workers.async_echo)}
    gate = new_gate()
    with running(endpoints) as client:
        blocked = run(client, "e", {"gate": gate})
        run(client, "e", {})  # queued behind it
        run(client, "a", {"gate": gate})
        poll(lambda: status(client, "e", blocked)["status"], lambda s: s == "IN_PROGRESS")
    open_gate(gate)  # the server stopped with a thread still blocked and a job queued
