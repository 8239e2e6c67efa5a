"""SIGTERM on a real ``python -m app serve``: readyz 503 first, in-flight work finishes, streams end cleanly."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.observability.conftest import issue_key, start_gateway_process
from tests.support.servers import ServerThread

pytestmark = pytest.mark.process  # starts subprocesses

DRAIN_S = 3
DELAY_S = 1


def test_sigterm_drains(tmp_path: Path, emulator: ServerThread, redis_url: str, redis_prefix: str) -> None:
    prefix = f"{redis_prefix}drain{uuid.uuid4().hex[:6]}:"
    key = issue_key(redis_url, prefix).key
    gateway = start_gateway_process(
        tmp_path,
        f"{emulator.url}/v2",
        redis_url,
        prefix,
        DRYAPI_DRAIN_S=str(DRAIN_S),
        DRYAPI_SHUTDOWN_DELAY_S=str(DELAY_S),
    )
    url, auth = gateway.url, {"authorization": f"Bearer {key}"}
    results: dict[str, Any] = {}
    streaming = threading.Event()

    def slow_request() -> None:
        body = {"messages": [{"role": "user", "content": "slow 3"}]}
        response = httpx.post(f"{url}/v1/chat/completions", json=body, headers=auth, timeout=30)
        results["slow"] = (response.status_code, response.text, time.monotonic())

    def open_stream() -> None:
        words = " ".join(["word"] * 400)  # minutes of "drip" generation: still open at the deadline
        body = {"messages": [{"role": "user", "content": f"drip {words}"}], "stream": True}
        frames: list[str] = []
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=auth, timeout=30) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    frames.append(line[6:])
                    streaming.set()
        results["stream"] = (response.status_code, frames, time.monotonic())

    threads = [threading.Thread(target=slow_request), threading.Thread(target=open_stream)]
    try:
        threads[1].start()
        assert streaming.wait(10)
        # Started only now: on a busy machine the stream may take seconds to open, and the slow
        # request must still be in flight when the listener closes.
        threads[0].start()
        time.sleep(0.3)  # the slow request is in flight
        assert "slow" not in results
        sent = time.monotonic()
        gateway.proc.send_signal(signal.SIGTERM)

        ready = httpx.get(f"{url}/readyz", timeout=2)  # still accepting during the delay
        assert ready.status_code == 503 and ready.json()["draining"] is True

        time.sleep(max(0.0, sent + DELAY_S + 0.5 - time.monotonic()))
        with pytest.raises(httpx.ConnectError):  # the listener is closed: no new connections
            httpx.get(f"{url}/healthz", timeout=2)
        assert "slow" not in results  # ...while the slow request is still in flight
        threads[0].join(15)
        status, text, _ = results["slow"]
        assert status == 200 and "echo: slow 3" in text

        threads[1].join(15)
        status, frames, ended = results["stream"]
        assert status == 200 and len(frames) > 3
        assert "[DONE]" not in frames
        final = json.loads(frames[-1])
        assert final["error"]["code"] == "server_shutting_down"
        assert DELAY_S + DRAIN_S - 2 < ended - sent < DELAY_S + DRAIN_S + 0.5

        assert gateway.proc.wait(timeout=DELAY_S + DRAIN_S + 5) == 0
        assert time.monotonic() - sent < DELAY_S + DRAIN_S + 2
    finally:
        if gateway.proc.poll() is None:
            gateway.proc.kill()
        for thread in threads:
            if thread.ident is not None:
                thread.join(5)
    out = gateway.output()
    assert '"event":"draining"' in out
    assert "Cancel" not in out  # uvicorn never had to cut a task at its timeout
