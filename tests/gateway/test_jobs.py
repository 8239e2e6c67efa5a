"""Async jobs end to end: enqueue, follow by polling and WebSocket, download, cancel, ownership."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from app import ws_protocol
from tests.gateway.conftest import ADMIN_KEY, Gateway


def _enqueue(gateway: Gateway, key: str, path: str, **kwargs: Any) -> str:
    headers = {"authorization": f"Bearer {key}", "prefer": "respond-async"}
    response = httpx.post(f"{gateway.url}{path}", headers=headers, timeout=10, **kwargs)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def _wait(gateway: Gateway, key: str, surface: str, job_id: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(
            f"{gateway.url}/v1/jobs/{surface}/{job_id}", headers={"authorization": f"Bearer {key}"}, timeout=10
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "input" not in body
        if body["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_lifecycle_per_surface(gateway: Gateway, api_key: str) -> None:
    chat = _enqueue(gateway, api_key, "/v1/chat/completions",
                    json={"messages": [{"role": "user", "content": "async hello"}]})
    emb = _enqueue(gateway, api_key, "/v1/embeddings", json={"input": ["a", "b"], "encoding_format": "base64"})
    img = _enqueue(gateway, api_key, "/v1/images/generations", json={"prompt": "fox", "n": 2})
    stt = _enqueue(gateway, api_key, "/v1/audio/transcriptions",
                   files={"file": ("a.wav", b"RIFF" + bytes(100), "audio/wav")}, data={"response_format": "srt"})

    body = _wait(gateway, api_key, "chat", chat)
    assert body["status"] == "COMPLETED"
    assert body["output"]["object"] == "chat.completion"
    assert body["output"]["model"] == "tiny-chat"
    assert body["output"]["choices"][0]["message"]["content"] == "echo: async hello"
    assert isinstance(body["executionTime"], int | float)

    body = _wait(gateway, api_key, "embeddings", emb)
    assert [type(d["embedding"]) for d in body["output"]["data"]] == [str, str]

    body = _wait(gateway, api_key, "images", img)
    urls = [d["url"] for d in body["output"]["data"]]
    assert len(urls) == 2 and httpx.get(urls[0]).content.startswith(b"\x89PNG")

    body = _wait(gateway, api_key, "transcribe", stt)
    assert body["output"].startswith("1\n00:00:00,000 --> ")


def test_streamed_chat_job_over_websocket(gateway: Gateway, api_key: str) -> None:
    job_id = _enqueue(gateway, api_key, "/v1/chat/completions",
                      json={"stream": True, "messages": [{"role": "user", "content": "slow 0.5 drip one two three"}]})
    frames = []
    url = f"{gateway.url.replace('http', 'ws')}/v1/jobs/chat/{job_id}/ws"
    with connect(url, additional_headers={"authorization": f"Bearer {api_key}"}, open_timeout=10) as socket:
        try:
            while True:
                frames.append(json.loads(socket.recv(timeout=15)))
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1000
    assert frames[0]["status"] in ("IN_QUEUE", "IN_PROGRESS")
    chunks = [piece for frame in frames for piece in frame.get("stream", [])]
    assert chunks, "the watcher saw no stream chunks"
    assert "".join(chunks).rstrip().endswith("data: [DONE]")
    final = frames[-1]
    assert final["status"] == "COMPLETED"
    assert final["output"]["choices"][0]["message"]["content"].strip() == "echo: slow 0.5 drip one two three"


def test_download_modes(gateway: Gateway, api_key: str) -> None:
    headers = {"authorization": f"Bearer {api_key}"}
    img = _enqueue(gateway, api_key, "/v1/images/generations", json={"prompt": "fox"})
    _wait(gateway, api_key, "images", img)
    links = httpx.get(f"{gateway.url}/v1/jobs/images/{img}/download", headers=headers).json()
    assert links["mode"] == "links" and links["job_id"] == img and links["surface"] == "images"
    assert httpx.get(links["links"][0]).status_code == 200

    chat = _enqueue(gateway, api_key, "/v1/chat/completions", json={"messages": [{"role": "user", "content": "dl"}]})
    _wait(gateway, api_key, "chat", chat)
    as_json = httpx.get(f"{gateway.url}/v1/jobs/chat/{chat}/download", headers=headers)
    assert as_json.headers["content-disposition"] == f'attachment; filename="{chat}.json"'
    assert as_json.json()["object"] == "chat.completion"
    as_text = httpx.get(f"{gateway.url}/v1/jobs/chat/{chat}/download?format=txt", headers=headers)
    assert as_text.text == "echo: dl"
    assert as_text.headers["content-type"] == "text/plain; charset=utf-8"  # once, not twice


def test_cancel(gateway: Gateway, api_key: str) -> None:
    job_id = _enqueue(gateway, api_key, "/v1/images/generations", json={"prompt": "slow 5"})
    headers = {"authorization": f"Bearer {api_key}"}
    response = httpx.post(f"{gateway.url}/v1/jobs/images/{job_id}/cancel", headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    assert _wait(gateway, api_key, "images", job_id)["status"] == "CANCELLED"


def test_other_keys_get_404_everywhere(gateway: Gateway, api_key: str) -> None:
    job_id = _enqueue(gateway, api_key, "/v1/embeddings", json={"input": "mine"})
    intruder = gateway.issue_key("intruder").key
    headers = {"authorization": f"Bearer {intruder}"}
    for method, path in (
        ("GET", f"/v1/jobs/embeddings/{job_id}"),
        ("GET", f"/v1/jobs/embeddings/{job_id}/download"),
        ("POST", f"/v1/jobs/embeddings/{job_id}/cancel"),
        ("GET", "/v1/jobs/embeddings/no-such-job"),
        ("GET", f"/v1/jobs/chat/{job_id}"),
    ):
        response = httpx.request(method, f"{gateway.url}{path}", headers=headers)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "job_not_found"
    admin = httpx.get(f"{gateway.url}/v1/jobs/embeddings/{job_id}", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert admin.status_code == 200
    ws = f"{gateway.url.replace('http', 'ws')}/v1/jobs/embeddings/{job_id}/ws"
    for key, code in ((intruder, 4404), ("dry-bogus", 4401)):
        with connect(ws, additional_headers={"authorization": f"Bearer {key}"}) as socket, pytest.raises(
            ConnectionClosed
        ) as closed:
            socket.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    with connect(f"{ws}?api_key={api_key}") as socket:
        assert json.loads(socket.recv(timeout=10))["id"] == job_id


def test_endpoint_override_is_admin_only(gateway: Gateway, api_key: str) -> None:
    job_id = _enqueue(gateway, api_key, "/v1/embeddings", json={"input": "x"})
    response = httpx.get(
        f"{gateway.url}/v1/jobs/embeddings/{job_id}?endpointId=emb-ep", headers={"authorization": f"Bearer {api_key}"}
    )
    assert response.status_code == 403


def test_runpod_ops_routes_are_admin_only(gateway: Gateway, api_key: str) -> None:
    denied = httpx.get(f"{gateway.url}/v1/runpod/emb-ep/health", headers={"authorization": f"Bearer {api_key}"})
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "permission_denied"
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    health = httpx.get(f"{gateway.url}/v1/runpod/emb-ep/health", headers=admin)
    assert health.status_code == 200 and "jobs" in health.json()
    job = {"input": {"openai_route": "/v1/embeddings", "openai_input": {"model": "m", "input": "x"}}}
    ran = httpx.post(f"{gateway.url}/v1/runpod/emb-ep/runsync?wait=5000", headers=admin, json=job, timeout=20)
    assert ran.json()["status"] == "COMPLETED"
    status = httpx.get(f"{gateway.url}/v1/runpod/emb-ep/status/{ran.json()['id']}", headers=admin)
    assert status.json()["status"] == "COMPLETED"
    purge = httpx.post(f"{gateway.url}/v1/runpod/emb-ep/purge-queue", headers=admin)
    assert purge.json()["status"] == "completed"


def test_callback_with_bad_signature_is_refused(gateway: Gateway) -> None:
    body = {"id": "x", "status": "COMPLETED"}
    response = httpx.post(f"{gateway.url}/v1/webhooks/runpod/some-nonce?sig=00", json=body)
    assert response.status_code == 404


def test_callback_counts_only_for_the_job_it_was_made_for(gateway: Gateway, api_key: str) -> None:
    slow_chat = {"messages": [{"role": "user", "content": "slow 20"}]}
    mine, other = (_enqueue(gateway, api_key, "/v1/chat/completions", json=slow_chat) for _ in range(2))
    with redis.Redis.from_url(gateway.settings.redis_url) as store:
        nonce = json.loads(store.get(gateway.services.keys.job(mine)))["nonce"]
    url = gateway.services.callback_url(nonce)
    failed = {"status": "FAILED", "error": "worker exploded"}
    for body in ({"id": other, **failed}, {"id": "no-such-job", **failed}, {"status": "FAILED"}, ["not", "a", "job"]):
        assert httpx.post(url, json=body).status_code == 404, body
    assert httpx.post(url, json={"id": mine, **failed}).status_code == 200
    assert _wait(gateway, api_key, "chat", mine, timeout=5)["status"] == "FAILED"  # without waiting for the worker
    headers = {"authorization": f"Bearer {api_key}"}
    assert httpx.get(f"{gateway.url}/v1/jobs/chat/{other}", headers=headers).json()["status"] != "FAILED"



@contextmanager
def _lazy_watcher(gateway: Gateway, key: str, job_id: str) -> Iterator[ClientConnection]:
    """A watcher with a tiny receive buffer that holds one message and reads on only when asked."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", int(gateway.url.rsplit(":", 1)[1])))
    ws = f"{gateway.url.replace('http', 'ws')}/v1/jobs/chat/{job_id}/ws"
    with connect(ws, sock=raw, additional_headers={"authorization": f"Bearer {key}"}, max_queue=1) as client:
        assert json.loads(client.recv(timeout=10))["id"] == job_id
        yield client


def _flood(gateway: Gateway, job_id: str, frames: int = 600) -> None:
    """Publish large stream events (~19 MB): far more than the kernel buffers and the backlog limit."""
    publisher = redis.Redis.from_url(gateway.settings.redis_url)
    channel = gateway.services.keys.job_events(job_id)
    frame = json.dumps({"id": job_id, "status": "IN_PROGRESS", "stream": ["x" * 32_000]})
    for _ in range(frames):
        publisher.publish(channel, frame)
    publisher.close()


def _read_until_closed(client: ClientConnection) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            client.recv(timeout=10)
    return closed.value


def test_a_watcher_that_falls_behind_is_closed_4408(gateway: Gateway, api_key: str) -> None:
    slow_chat = {"messages": [{"role": "user", "content": "slow 20"}]}
    job_id = _enqueue(gateway, api_key, "/v1/chat/completions", json=slow_chat)
    with _lazy_watcher(gateway, api_key, job_id) as client:
        _flood(gateway, job_id)
        time.sleep(2)  # not reading: the backlog overflows, but the socket is not yet stalled for long
        closed = _read_until_closed(client)
    assert closed.rcvd is not None and closed.rcvd.code == 4408


def test_a_watcher_that_stops_reading_is_dropped(
    gateway: Gateway, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway runs in this process: a shorter stall limit than production's 10 s, same path.
    monkeypatch.setattr(ws_protocol, "STALL_LIMIT_S", 3.0)
    slow_chat = {"messages": [{"role": "user", "content": "slow 30"}]}
    job_id = _enqueue(gateway, api_key, "/v1/chat/completions", json=slow_chat)
    hub = gateway.app.state.events
    before = hub.watchers
    with _lazy_watcher(gateway, api_key, job_id) as client:
        assert hub.watchers == before + 1
        _flood(gateway, job_id)
        deadline = time.monotonic() + ws_protocol.STALL_LIMIT_S + 10
        while hub.watchers != before:  # the gateway lets go while the client still reads nothing
            assert time.monotonic() < deadline, "stalled watcher still held"
            time.sleep(0.2)
        closed = _read_until_closed(client)
    assert closed.rcvd is None  # reset, not closed: no close frame can reach a peer that does not read
