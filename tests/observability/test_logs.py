"""Structured logs of a real ``python -m app serve``: access lines with context, and no payload or key."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from websockets.sync.client import connect

from app.observability.logging import configure_logging, sane_request_id
from tests.observability.conftest import GatewayProcess, issue_key, start_gateway_process
from tests.support.servers import ServerThread


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_request_ids_are_checked() -> None:
    assert sane_request_id("req-1._A") == "req-1._A"
    assert sane_request_id("x" * 128) == "x" * 128
    for bad in ("x" * 129, "has space", "new\nline", "a/b", "", None, "ключ"):
        assert sane_request_id(bad) is None


def _traffic(gateway: GatewayProcess, key: str, marker: str) -> dict[str, str]:
    """Every kind of request the gateway serves, with the marker in every payload; returns request ids."""
    url, auth = gateway.url, {"authorization": f"Bearer {key}"}
    ids: dict[str, str] = {}
    with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
        messages = [{"role": "system", "content": f"system {marker}"}, {"role": "user", "content": f"hi {marker}"}]
        ok = client.post("/v1/chat/completions", json={"messages": messages}, headers={"x-request-id": "trace-ok.1"})
        assert ok.status_code == 200 and marker in ok.text
        assert ok.headers["x-request-id"] == "trace-ok.1"
        ids["ok"] = "trace-ok.1"

        with client.stream("POST", "/v1/chat/completions", json={"messages": messages, "stream": True}) as stream:
            body = "".join(stream.iter_text())
            assert stream.status_code == 200 and "[DONE]" in body
            ids["stream"] = stream.headers["x-request-id"]

        emb = client.post("/v1/embeddings", json={"input": [marker, f"more {marker}"]})
        assert emb.status_code == 200

        bad = client.post(
            "/v1/chat/completions", json={"messages": marker}, headers={"x-request-id": f"bad id {marker}"}
        )
        assert bad.status_code == 400
        assert bad.headers["x-request-id"] != f"bad id {marker}" and len(bad.headers["x-request-id"]) == 32
        ids["bad"] = bad.headers["x-request-id"]
        broken = client.post("/v1/chat/completions", content=f'{{"messages": [{marker}'.encode())
        assert broken.status_code == 400

        crash = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "system", "content": marker}, {"role": "user", "content": "crash"}]},
        )
        assert crash.status_code == 502, crash.text
        ids["crash"] = crash.headers["x-request-id"]

        wrong = httpx.post(
            f"{url}/v1/embeddings", json={"input": marker}, headers={"authorization": f"Bearer sk-{marker}"}
        )
        assert wrong.status_code == 401
        assert httpx.get(f"{url}/v1/models?api_key={key}&q={marker}").status_code == 401

        queued = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": f"queued {marker}"}]},
            headers={"prefer": "respond-async"},
        )
        assert queued.status_code == 202
        job_id = queued.json()["id"]
        ids["job"] = job_id
    ws_url = url.replace("http://", "ws://") + f"/v1/jobs/chat/{job_id}/ws?api_key={key}&note={marker}"
    with connect(ws_url, open_timeout=10) as socket:
        frames = [json.loads(frame) for frame in socket]
    assert frames[-1]["status"] == "COMPLETED"
    assert marker in json.dumps(frames[-1])  # the output really carried the marker
    return ids


@pytest.mark.process
def test_logs_carry_context_and_never_payloads_or_keys(
    tmp_path: Path, emulator: ServerThread, redis_url: str, redis_prefix: str
) -> None:
    prefix = f"{redis_prefix}logs{uuid.uuid4().hex[:6]}:"
    issued = issue_key(redis_url, prefix)
    gateway = start_gateway_process(tmp_path, f"{emulator.url}/v2", redis_url, prefix)
    marker = f"zebra{uuid.uuid4().hex[:10]}"
    try:
        ids = _traffic(gateway, issued.key, marker)
    finally:
        assert gateway.terminate() == 0
    output = gateway.output()
    for secret in (marker, issued.key, issued.key[4:], issued.webhook_secret, "api_key=", "obs-test-secret"):
        assert secret not in output, f"{secret!r} leaked into the logs"

    lines = _lines(gateway.out.read_text())
    assert lines, output
    access = [line for line in lines if line["event"] == "request"]
    by_id = {line["request_id"]: line for line in access}

    ok = by_id[ids["ok"]]
    assert ok["route"] == "/v1/chat/completions" and ok["method"] == "POST" and ok["status"] == 200
    assert ok["key_id"] == issued.id and ok["surface"] == "chat"
    assert ok["model"] == "tiny-chat" and ok["endpoint"] == "chat-ep"
    assert ok["duration_ms"] > 0 and ok["upstream_ms"] > 0 and "overhead_ms" in ok
    assert {"timestamp", "level"} <= ok.keys()

    assert by_id[ids["stream"]]["status"] == 200 and by_id[ids["stream"]]["upstream_ms"] > 0
    assert by_id[ids["bad"]]["status"] == 400 and by_id[ids["bad"]]["key_id"] == issued.id
    assert by_id[ids["crash"]]["status"] == 502 and by_id[ids["crash"]]["level"] == "warning"
    unauthorized = [line for line in access if line["status"] == 401]
    assert {line["route"] for line in unauthorized} == {"/v1/embeddings", "/v1/models"}
    assert all("key_id" not in line for line in unauthorized)

    queued = next(line for line in access if line.get("job_id") == ids["job"] and line["method"] == "POST")
    assert queued["status"] == 202 and queued["key_id"] == issued.id
    socket = next(line for line in lines if line["event"] == "websocket")
    assert socket["route"] == "/v1/jobs/{surface}/{jobId}/ws" and socket["status"] == 101
    assert socket["key_id"] == issued.id and socket["job_id"] == ids["job"] and socket["surface"] == "chat"
    # No line anywhere names a raw path with its query string.
    assert all("?" not in str(line.get("route", "")) for line in lines)


@pytest.mark.process
@pytest.mark.parametrize("fmt", ["console"])
def test_console_format_in_development(
    fmt: str, tmp_path: Path, emulator: ServerThread, redis_url: str, redis_prefix: str
) -> None:
    prefix = f"{redis_prefix}logc{uuid.uuid4().hex[:6]}:"
    gateway = start_gateway_process(tmp_path, f"{emulator.url}/v2", redis_url, prefix, DRYAPI_LOG_FORMAT=fmt)
    try:
        response = httpx.get(f"{gateway.url}/healthz", headers={"x-request-id": "console-check"})
        assert response.headers["x-request-id"] == "console-check"
    finally:
        assert gateway.terminate() == 0
    out = gateway.out.read_text()
    line = next(line for line in out.splitlines() if "console-check" in line)
    assert not line.startswith("{") and "request" in line and "route=/healthz" in line


def test_payload_fields_are_redacted_whoever_logs_them(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json")
    structlog.get_logger("careless").info("oops", prompt="tiger-secret", api_key="dry-secret", key_id="key_1")
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["prompt"] == line["api_key"] == "[redacted]" and line["key_id"] == "key_1"
