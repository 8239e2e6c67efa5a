"""Many readers of one job across two replicas: one poller, and each status change is one event."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from app.emulator import EmulatorEndpoint, create_emulator_app
from app.webhooks import WebhookSettings
from tests.gateway.conftest import RUNPOD_KEY, Gateway, start_gateway, unique
from tests.support.servers import ServerThread
from tests.webhooks.receiver import Receiver

WATCHERS = 20
SLOW_CHAT = {"messages": [{"role": "user", "content": "slow 3"}]}
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    hooks = Receiver()
    server = ServerThread(hooks).start()
    yield hooks, server.url
    server.stop()


class StatusCounter:
    """The emulator's ASGI app, counting RunPod ``/status`` requests per job id."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        parts = str(scope.get("path", "")).split("/")
        if scope["type"] == "http" and len(parts) == 5 and parts[3] == "status":
            with self._lock:
                self.calls[parts[4]] = self.calls.get(parts[4], 0) + 1
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[ServerThread, StatusCounter]]:
    endpoints = {"chat-ep": EmulatorEndpoint(handler="tests.gateway.workers:chat", concurrency=4)}
    counter = StatusCounter(create_emulator_app(endpoints, api_key=RUNPOD_KEY))
    server = ServerThread(counter).start()
    yield server, counter
    server.stop()


@pytest.fixture(scope="module")
def replicas(
    upstream: tuple[ServerThread, StatusCounter], redis_url: str, redis_prefix: str
) -> Iterator[tuple[Gateway, Gateway]]:
    prefix = f"{redis_prefix}engine-{unique()}:"
    hooks = WebhookSettings(schedule=(0, 0.3, 0.3), timeout_s=2)
    options: dict[str, Any] = {"webhook_allowlist": frozenset({"127.0.0.1"}), "webhooks": hooks}
    first = start_gateway(f"{upstream[0].url}/v2", redis_url, prefix, **options)
    second = start_gateway(f"{upstream[0].url}/v2", redis_url, prefix, **options)
    yield first, second
    first.server.stop()
    second.server.stop()


def _enqueue(gateway: Gateway, key: str, body: dict[str, Any]) -> str:
    headers = {"authorization": f"Bearer {key}", "prefer": "respond-async"}
    response = httpx.post(f"{gateway.url}/v1/chat/completions", headers=headers, json=body, timeout=10)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def _watch(gateway: Gateway, key: str, job_id: str, frames: list[dict[str, Any]]) -> None:
    url = f"{gateway.url.replace('http', 'ws')}/v1/jobs/chat/{job_id}/ws"
    with connect(url, additional_headers={"authorization": f"Bearer {key}"}, open_timeout=20) as socket:
        try:
            while True:
                frames.append(json.loads(socket.recv(timeout=30)))
        except ConnectionClosed:
            return


def _watch_with(replicas: tuple[Gateway, Gateway], key: str, job_id: str, count: int) -> list[list[dict[str, Any]]]:
    frames: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    threads = [
        threading.Thread(target=_watch, args=(replicas[i % 2], key, job_id, frames[i])) for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=40)
    return frames


def _processing_events(hooks: Receiver, token: str) -> list[str]:
    return [a.delivery_id for a in hooks.at(token) if a.headers.get("x-dryapi-event") == "job.processing"]


def _wait_for_webhook(hooks: Receiver, token: str, event: str) -> None:
    deadline = time.monotonic() + 15
    while not any(a.headers.get("x-dryapi-event") == event for a in hooks.at(token)):
        assert time.monotonic() < deadline, f"no {event} webhook"
        time.sleep(0.05)


@pytest.mark.slow
def test_many_watchers_on_two_replicas_make_one_pollers_polls(
    replicas: tuple[Gateway, Gateway], upstream: tuple[ServerThread, StatusCounter]
) -> None:
    calls = upstream[1].calls
    key = replicas[0].issue_key("pollers").key
    alone = _enqueue(replicas[0], key, SLOW_CHAT)  # one watcher: how often one poller polls this job
    assert _watch_with(replicas, key, alone, 1)[0][-1]["status"] == "COMPLETED"
    job_id = _enqueue(replicas[0], key, SLOW_CHAT)
    for frames in _watch_with(replicas, key, job_id, WATCHERS):
        assert frames and frames[-1]["status"] == "COMPLETED", frames
    assert calls[job_id] <= calls[alone] + 2, (calls[job_id], calls[alone])


@pytest.mark.slow
def test_a_status_change_is_one_event_whatever_the_readers(
    replicas: tuple[Gateway, Gateway], receiver: tuple[Receiver, str]
) -> None:
    hooks, base = receiver
    key = replicas[0].issue_key("readers").key
    token = unique()
    job_id = _enqueue(replicas[0], key, SLOW_CHAT | {"webhook_url": f"{base}/{token}/ok"})
    finished = threading.Event()

    def read(gateway: Gateway) -> None:
        headers = {"authorization": f"Bearer {key}"}
        with httpx.Client(headers=headers, timeout=10) as http:
            while not finished.is_set():
                body = http.get(f"{gateway.url}/v1/jobs/chat/{job_id}").json()
                if body["status"] in TERMINAL:
                    finished.set()

    readers = [threading.Thread(target=read, args=(replicas[i % 2],)) for i in range(WATCHERS)]
    for thread in readers:
        thread.start()
    socket_frames = _watch_with(replicas, key, job_id, WATCHERS)
    for thread in readers:
        thread.join(timeout=30)
    _wait_for_webhook(hooks, token, "job.completed")
    time.sleep(0.5)  # a late duplicate would arrive by now
    assert len(_processing_events(hooks, token)) == 1, _processing_events(hooks, token)
    for frames in socket_frames:
        statuses = [f["status"] for f in frames if "stream" not in f]
        assert statuses.count("IN_PROGRESS") <= 1, statuses
        assert statuses[-1] == "COMPLETED"
