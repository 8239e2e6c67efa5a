"""Reload in real `python -m app serve` processes: SIGHUP, and a broadcast across two workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import ADMIN_KEY
from tests.routing_reload.conftest import model_ids, routing_text, sha256_of, wait_for
from tests.support.servers import free_port

pytestmark = pytest.mark.process  # starts subprocesses

ROOT = Path(__file__).resolve().parents[2]
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
UPSTREAM = "http://127.0.0.1:9/v2"  # never called: these tests only list models


@contextmanager
def serving(routing: Path, log: Path, *args: str, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port), "--routing", str(routing), *args],
            cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "gateway did not become ready"
                time.sleep(0.1)
            yield url, proc
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_sighup_reloads_and_a_bad_file_is_logged_not_served(tmp_path: Path) -> None:
    routing, log = tmp_path / "routing.yaml", tmp_path / "gateway.log"
    routing.write_text(routing_text(UPSTREAM))
    env = {"REDIS_URL": "memory://", "DRYAPI_ROUTING_POLL_S": "0", "DRYAPI_ADMIN_KEY": ADMIN_KEY}
    with serving(routing, log, env=env) as (url, proc):
        assert "model-a" in model_ids(url, ADMIN_KEY)
        routing.write_text(routing_text(UPSTREAM, chat_model="model-hup"))
        time.sleep(1.2)
        assert "model-a" in model_ids(url, ADMIN_KEY)  # polling is off: nothing changes by itself
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "model-hup" in model_ids(url, ADMIN_KEY))

        routing.write_text(routing_text(UPSTREAM, chat_model="model-x") + "bogus: 1\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "routing_reload_failed" in log.read_text())
        assert proc.poll() is None
        assert "model-hup" in model_ids(url, ADMIN_KEY)
        text = log.read_text()
        assert str(routing) in text and "bogus" in text
        assert "rp-test-key" not in text and "hf-secret-value" not in text
        status = httpx.get(f"{url}/admin/routing", headers=ADMIN, timeout=5).json()
        assert status["last_error"]["trigger"] == "sighup"
        assert status["last_error"]["problems"] == [{"path": "bogus", "message": "unknown key"}]


def _routing_status(url: str) -> tuple[str, str]:
    body = httpx.get(f"{url}/admin/routing", headers=ADMIN, timeout=5).json()
    return body["loaded_at"], body["sha256"]


def test_two_workers_converge_through_the_broadcast(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    routing, log = tmp_path / "routing.yaml", tmp_path / "gateway.log"
    routing.write_text(routing_text(UPSTREAM))
    env = {
        "REDIS_URL": redis_url,
        "DRYAPI_REDIS_PREFIX": f"{redis_prefix}reload-workers:",
        "DRYAPI_ADMIN_KEY": ADMIN_KEY,
        "DRYAPI_ROUTING_POLL_S": "0",  # no polling: only the broadcast can reach the other worker
    }
    with serving(routing, log, "--workers", "2", env=env) as (url, _):
        # Both workers up: each reports its own load time (every request on a new connection).
        workers: set[str] = set()

        def both_up() -> bool:
            workers.add(_routing_status(url)[0])
            return len(workers) == 2

        wait_for(both_up, timeout=20)

        routing.write_text(routing_text(UPSTREAM, chat_model="model-new"))
        new_sha = sha256_of(routing)
        started = time.monotonic()
        reloaded = httpx.post(f"{url}/admin/routing/reload", headers=ADMIN, timeout=5).json()
        assert reloaded["result"] == "ok" and reloaded["sha256"] == new_sha

        def converged() -> bool:
            answers = [_routing_status(url) for _ in range(20)]
            models = [model_ids(url, ADMIN_KEY) for _ in range(20)]
            return all(sha == new_sha for _, sha in answers) and all("model-new" in m for m in models)

        wait_for(converged, timeout=5)
        assert time.monotonic() - started < 5
        # Both processes answered with the new config, each with its own reload time.
        seen = {_routing_status(url) for _ in range(40)}
        assert {sha for _, sha in seen} == {new_sha}
        assert len(seen) == 2, seen
