"""A large streamed async chat output neither stalls the event loop nor grows without bound."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from tests.engine.workers import PIECE
from tests.gateway.conftest import RUNPOD_KEY, Gateway, start_gateway, unique
from tests.support.servers import ServerThread

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")
EVENTS = 40_000  # ~2.6 MB of content, ~9 MB of SSE in 40k pieces


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    endpoints = {"chat-ep": EmulatorEndpoint(handler="tests.engine.workers:big_chat")}
    server = ServerThread(create_emulator_app(endpoints, api_key=RUNPOD_KEY)).start()
    yield server
    server.stop()


def _finish(gateway: Gateway, key: str, events: int) -> tuple[dict[str, Any], float]:
    """Run one large streamed job to its end; return its body and the slowest /healthz answer meanwhile."""
    headers = {"authorization": f"Bearer {key}", "prefer": "respond-async"}
    body = {"stream": True, "messages": [{"role": "user", "content": f"big {events}"}]}
    job_id = httpx.post(f"{gateway.url}/v1/chat/completions", headers=headers, json=body).json()["id"]
    done = threading.Event()
    slowest = [0.0]

    def probe() -> None:
        with httpx.Client(timeout=30) as http:
            while not done.is_set():
                started = time.monotonic()
                assert http.get(f"{gateway.url}/healthz").status_code == 200
                slowest[0] = max(slowest[0], time.monotonic() - started)
                time.sleep(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            status = httpx.get(f"{gateway.url}/v1/jobs/chat/{job_id}", headers={"authorization": f"Bearer {key}"},
                               timeout=60).json()
            if status["status"] in TERMINAL:
                return status, slowest[0]
            assert time.monotonic() < deadline, status["status"]
            time.sleep(0.2)
    finally:
        done.set()
        prober.join()


def test_a_large_streamed_output_keeps_the_gateway_responsive(
    upstream: ServerThread, redis_url: str, redis_prefix: str
) -> None:
    gw = start_gateway(f"{upstream.url}/v2", redis_url, f"{redis_prefix}big-{unique()}:")
    try:
        body, slowest = _finish(gw, gw.issue_key("big").key, EVENTS)
        assert body["status"] == "COMPLETED", body.get("error")
        assert body["output"]["choices"][0]["message"]["content"] == PIECE * EVENTS
        print(f"slowest /healthz {slowest:.3f}s")
        assert slowest < 1.0, f"/healthz waited {slowest:.2f}s"
    finally:
        gw.server.stop()


def test_a_stream_past_the_bound_fails_clearly(upstream: ServerThread, redis_url: str, redis_prefix: str) -> None:
    gw = start_gateway(f"{upstream.url}/v2", redis_url, f"{redis_prefix}bound-{unique()}:", stream_max_bytes=100_000)
    try:
        body, _ = _finish(gw, gw.issue_key("bound").key, 5_000)
        assert body["status"] == "FAILED" and "output" not in body
        assert body["error"]["code"] == "output_too_large"
        assert "100000 bytes" in body["error"]["message"]
    finally:
        gw.server.stop()
