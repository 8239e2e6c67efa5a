"""/metrics: the dryapi_* series exist and move with traffic, in one process and across workers."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.gateway.conftest import Gateway, start_gateway
from tests.observability.conftest import issue_key, start_gateway_process
from tests.support.servers import ServerThread


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum over the series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


@pytest.fixture(scope="module")
def gateway(emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    gw = start_gateway(f"{emulator.url}/v2", redis_url, f"{redis_prefix}met{uuid.uuid4().hex[:6]}:")
    yield gw
    gw.server.stop()


def test_metrics_move_with_traffic(gateway: Gateway) -> None:
    key = gateway.issue_key("metrics").key
    auth = {"authorization": f"Bearer {key}"}
    before = scrape(gateway.url)
    with httpx.Client(base_url=gateway.url, headers=auth, timeout=30) as client:
        chat = {"messages": [{"role": "user", "content": "hello"}]}
        assert client.post("/v1/chat/completions", json=chat).status_code == 200
        assert client.post("/v1/chat/completions", json={**chat, "stream": True}).status_code == 200
        assert client.post("/v1/embeddings", json={"input": "x"}).status_code == 200
        assert client.get("/v1/jobs/chat/no-such-job").status_code == 404
        assert client.get("/no/such/route").status_code == 404
        queued = client.post("/v1/chat/completions", json=chat, headers={"prefer": "respond-async"})
        assert queued.status_code == 202
        deadline = time.monotonic() + 10
        while client.get(f"/v1/jobs/chat/{queued.json()['id']}").json()["status"] != "COMPLETED":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    after = scrape(gateway.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = "/v1/chat/completions"
    assert delta("dryapi_requests_total", route=route, method="POST", status="200") == 2
    assert delta("dryapi_requests_total", route=route, method="POST", status="202") == 1
    assert delta("dryapi_request_duration_seconds_count", route=route, method="POST", status="200") == 2
    assert delta("dryapi_requests_total", route="/v1/jobs/{surface}/{jobId}", method="GET", status="404") == 1
    assert delta("dryapi_requests_total", route="<unmatched>", method="GET", status="404") == 1
    # Route templates only: no raw path with an id ever becomes a label.
    assert not any("no-such-job" in str(labels) or "/no/such" in str(labels) for _, labels in after)

    for operation in ("openai.chat", "openai.chat.stream", "openai.embeddings", "run"):
        assert delta("dryapi_upstream_request_duration_seconds_count", operation=operation, status="200") >= 1, (
            operation
        )
    assert delta("dryapi_upstream_request_duration_seconds_count", endpoint="chat-ep", operation="run") == 1
    assert delta("dryapi_gateway_overhead_seconds_count") >= 4
    assert delta("dryapi_stream_first_chunk_seconds_count") == 1
    assert delta("dryapi_jobs_total", surface="chat", status="COMPLETED") == 1


def test_websocket_gauge(gateway: Gateway) -> None:
    key = gateway.issue_key("ws-gauge").key
    queued = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "slow 1.5"}]},
        headers={"authorization": f"Bearer {key}", "prefer": "respond-async"},
    )
    job_id = queued.json()["id"]
    base = value(scrape(gateway.url), "dryapi_websocket_connections")
    ws_url = gateway.url.replace("http://", "ws://") + f"/v1/jobs/chat/{job_id}/ws"
    with connect(ws_url, additional_headers={"authorization": f"Bearer {key}"}, open_timeout=10) as socket:
        assert json.loads(socket.recv(timeout=10))["status"] in ("IN_QUEUE", "IN_PROGRESS")
        assert value(scrape(gateway.url), "dryapi_websocket_connections") == base + 1
        frames = [json.loads(frame) for frame in socket]
    assert frames[-1]["status"] == "COMPLETED"
    deadline = time.monotonic() + 5
    while value(scrape(gateway.url), "dryapi_websocket_connections") != base:
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.process
def test_workers_share_one_registry(tmp_path: Path, emulator: ServerThread, redis_url: str, redis_prefix: str) -> None:
    prefix = f"{redis_prefix}mw{uuid.uuid4().hex[:6]}:"
    key = issue_key(redis_url, prefix).key
    parent = tmp_path / "prom"
    parent.mkdir()
    gateway = start_gateway_process(
        tmp_path, f"{emulator.url}/v2", redis_url, prefix, "--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(parent)
    )
    try:
        [workdir] = list(parent.iterdir())  # the CLI's fresh directory inside the one we named

        def serving_pids() -> set[str]:
            return {path.stem.rsplit("_", 1)[-1] for path in workdir.glob("counter_*.db")}

        sent = 0
        deadline = time.monotonic() + 20
        # A fresh connection each time, until both workers have served some (the kernel picks).
        while sent < 8 or len(serving_pids()) < 2:
            assert time.monotonic() < deadline, serving_pids()
            response = httpx.post(
                f"{gateway.url}/v1/embeddings", json={"input": "x"}, headers={"authorization": f"Bearer {key}"}
            )
            assert response.status_code == 200
            sent += 1
        for _ in range(4):  # whichever worker answers the scrape reports everyone's counts
            samples = scrape(gateway.url)
            assert value(samples, "dryapi_requests_total", route="/v1/embeddings", status="200") == sent
            assert (
                value(samples, "dryapi_upstream_request_duration_seconds_count", operation="openai.embeddings") == sent
            )
    finally:
        assert gateway.terminate() == 0
    assert list(parent.iterdir()) == []  # removed at exit
