"""Every job reaches a terminal state in our records: sweeper, replicas, expiry."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from app.emulator import EmulatorEndpoint, create_emulator_app
from app.jobs.watcher import WATCHED_INTERVAL_S
from tests.gateway.conftest import Gateway, start_gateway, unique
from tests.support.servers import ServerThread, free_port, serve


def _enqueue(gateway: Gateway, key: str, path: str, body: dict[str, Any]) -> str:
    headers = {"authorization": f"Bearer {key}", "prefer": "respond-async"}
    response = httpx.post(f"{gateway.url}{path}", headers=headers, json=body, timeout=10)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_lost_callback_is_recovered_by_the_sweeper(emulator: ServerThread, redis_url: str, redis_prefix: str) -> None:
    prefix = f"{redis_prefix}lost-{unique()}:"
    # RunPod's callback goes to a port nobody listens on: it is lost.
    gw = start_gateway(f"{emulator.url}/v2", redis_url, prefix, public_url=f"http://127.0.0.1:{free_port()}")
    try:
        key = gw.issue_key("sweep").key
        job_id = _enqueue(gw, key, "/v1/embeddings", {"input": "nobody is watching"})
        store = redis.Redis.from_url(redis_url)
        result_key = gw.services.keys.job_result(job_id)
        deadline = time.monotonic() + 10
        while not store.exists(result_key):
            assert time.monotonic() < deadline, "the sweeper did not collect the result"
            time.sleep(0.1)
        kept = json.loads(store.get(result_key) or b"{}")
        assert kept["status"] == "COMPLETED" and kept["output"]["object"] == "list"
        store.close()
    finally:
        gw.server.stop()


def _watch(url: str, key: str, frames: list[dict[str, Any]]) -> None:
    with connect(url, additional_headers={"authorization": f"Bearer {key}"}) as socket:
        try:
            while True:
                frames.append(json.loads(socket.recv(timeout=20)))
        except ConnectionClosed:
            return


def test_two_replicas_share_one_poller(emulator: ServerThread, redis_url: str, redis_prefix: str) -> None:
    prefix = f"{redis_prefix}replicas-{unique()}:"
    first = start_gateway(f"{emulator.url}/v2", redis_url, prefix)
    second = start_gateway(f"{emulator.url}/v2", redis_url, prefix)
    try:
        key = first.issue_key("two-replicas").key
        job_id = _enqueue(
            first, key, "/v1/chat/completions",
            {"stream": True, "messages": [{"role": "user", "content": "slow 2 drip a b c"}]},
        )
        started = time.monotonic()
        frames: list[list[dict[str, Any]]] = [[], [], []]
        threads = [
            threading.Thread(target=_watch, args=(f"{gw.url.replace('http', 'ws')}/v1/jobs/chat/{job_id}/ws", key, f))
            for gw, f in zip((first, second, second), frames, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        for seen in frames:
            assert seen[-1]["status"] == "COMPLETED"
            assert any(frame.get("stream") for frame in seen), "a watcher saw no chunks"
        elapsed = time.monotonic() - started
        polls = first.services_polls() + second.services_polls()
        # One poller polls a watched job every 0.25 s; independent pollers per watcher would triple it.
        single_poller = elapsed / WATCHED_INTERVAL_S
        assert polls <= single_poller * 1.3 + 4, (polls, elapsed)
    finally:
        first.server.stop()
        second.server.stop()


def test_expired_job_says_it_expired(redis_url: str, redis_prefix: str) -> None:
    endpoints = {"emb-ep": EmulatorEndpoint(handler="tests.gateway.workers:embeddings")}
    # RunPod keeps /run results for 30 minutes; this emulator forgets them after half a second.
    with serve(create_emulator_app(endpoints, api_key="rp-test-key", run_result_ttl_s=0.5)) as short_lived:
        gw = start_gateway(f"{short_lived.url}/v2", redis_url, f"{redis_prefix}gone-{unique()}:", result_ttl_s=0)
        try:
            key = gw.issue_key("expiry").key
            job_id = _enqueue(gw, key, "/v1/embeddings", {"input": "short lived"})
            headers = {"authorization": f"Bearer {key}"}
            deadline = time.monotonic() + 10
            while True:
                response = httpx.get(f"{gw.url}/v1/jobs/embeddings/{job_id}", headers=headers)
                if response.status_code == 404:
                    break
                assert time.monotonic() < deadline, response.text
                time.sleep(0.2)
            error = response.json()["error"]
            assert error["code"] == "job_expired" and "expired" in error["message"]
            missing = httpx.get(f"{gw.url}/v1/jobs/embeddings/not-a-job", headers=headers)
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "job_not_found"
        finally:
            gw.server.stop()


def test_sweeping_keeps_to_its_rate_and_never_holds_up_watched_jobs(redis_url: str, redis_prefix: str) -> None:
    endpoints = {
        "img-ep": EmulatorEndpoint(handler="tests.gateway.workers:images", concurrency=1),
        "chat-ep": EmulatorEndpoint(handler="tests.gateway.workers:chat", concurrency=2),
    }
    with serve(create_emulator_app(endpoints, api_key="rp-test-key")) as upstream:
        # Callbacks are lost (nobody listens at the public URL): only polls can finish a job here.
        gw = start_gateway(
            f"{upstream.url}/v2", redis_url, f"{redis_prefix}budget-{unique()}:",
            public_url=f"http://127.0.0.1:{free_port()}", sweep_rate=4.0,
        )
        try:
            key = gw.issue_key("budget").key
            for _ in range(40):  # a backlog of queued jobs, all due for a sweep 2 s after enqueue
                _enqueue(gw, key, "/v1/images/generations", {"prompt": "slow 3"})
            before = gw.services_polls()
            time.sleep(5)
            swept = gw.services_polls() - before
            # 4 polls/s plus a bucket of 4; without a budget every job is polled at least once.
            assert 4 <= swept <= 4 * 5 + 6, swept
            job_id = _enqueue(gw, key, "/v1/chat/completions", {"messages": [{"role": "user", "content": "slow 1"}]})
            started = time.monotonic()
            frames: list[dict[str, Any]] = []
            _watch(f"{gw.url.replace('http', 'ws')}/v1/jobs/chat/{job_id}/ws", key, frames)
            assert frames[-1]["status"] == "COMPLETED"
            # The watched job is polled every 0.25 s despite the backlog of due sweeps.
            assert time.monotonic() - started < 4, time.monotonic() - started
        finally:
            gw.server.stop()
