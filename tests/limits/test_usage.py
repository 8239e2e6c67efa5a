"""Usage counters from real handler outputs (scripted workers behind the emulator), read back
through GET /admin/usage and `dryapi-gateway keys usage`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import ADMIN_KEY, Gateway, start_gateway
from tests.limits.conftest import routing_with, sub_prefix
from tests.support.servers import ServerThread

ROOT = Path(__file__).resolve().parents[2]
LIMITS = "limits: {tiers: {basic: {rpm: 100}}}\n"
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(scope="module")
def gw(emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    upstream = f"{emulator.url}/v2"
    gateway = start_gateway(
        upstream,
        redis_url,
        sub_prefix(redis_prefix),
        admin_key=ADMIN_KEY,
        inline_audio_max_bytes=4096,
        routing=routing_with(upstream, LIMITS),
    )
    yield gateway
    gateway.server.stop()


def usage(gw: Gateway, key_id: str, **params: str) -> httpx.Response:
    return httpx.get(f"{gw.url}/admin/usage", params={"key_id": key_id, **params}, headers=ADMIN)


def totals_when(gw: Gateway, key_id: str, expected: dict[str, Any]) -> dict[str, Any]:
    """Writes are detached from the response: poll until they have landed."""
    deadline = time.monotonic() + 10
    while True:
        body = usage(gw, key_id).json()
        if body["totals"] == expected or time.monotonic() > deadline:
            return dict(body)
        time.sleep(0.05)


def finish_job(gw: Gateway, key: str, surface: str, job_id: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = httpx.get(f"{gw.url}/v1/jobs/{surface}/{job_id}", headers={"authorization": f"Bearer {key}"}).json()
        if status["status"] == "COMPLETED":
            return
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not complete")


@pytest.mark.process
def test_usage_from_every_surface(gw: Gateway, redis_url: str) -> None:
    issued = gw.issue_key("metered", tier="basic")
    client = gw.client(issued.key)
    auth = {"authorization": f"Bearer {issued.key}"}

    # chat: sync (3 prompt + 3 completion tokens: "echo: hello world"), a stream with a usage
    # chunk (3 + 3: "echo: hi there"), a stream without one (counted, no tokens).
    client.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": "hello world"}])
    list(
        client.chat.completions.create(
            model="tiny-chat",
            messages=[{"role": "user", "content": "hi there"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    list(client.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": "x"}], stream=True))
    # An async chat job, counted when it finishes: 3 + 2 ("echo: later").
    job = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "tiny-chat", "messages": [{"role": "user", "content": "later"}]},
        headers={**auth, "prefer": "respond-async"},
    )
    assert job.status_code == 202
    finish_job(gw, issued.key, "chat", job.json()["id"])
    # A failed request is not counted.
    with pytest.raises(Exception):  # noqa: B017 - the SDK's error class does not matter here
        client.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": "fail"}])

    # embeddings: "a b" and "c" are 3 input tokens.
    client.embeddings.create(model="tiny-embed", input=["a b", "c"])
    # images: 2 of 128x64 now, 1 of 64x64 as an async job.
    client.images.generate(model="tiny-image", prompt="p", n=2, size="128x64", response_format="b64_json")  # type: ignore[arg-type]
    image_job = httpx.post(
        f"{gw.url}/v1/images/generations",
        json={"model": "tiny-image", "prompt": "q", "size": "64x64"},
        headers={**auth, "prefer": "respond-async"},
    )
    assert image_job.status_code == 202
    finish_job(gw, issued.key, "images", image_job.json()["id"])
    # transcribe: the worker's last segment ends at 3.25 s.
    client.audio.transcriptions.create(model="tiny-whisper", file=("a.wav", b"RIFF" + b"\0" * 100, "audio/wav"))

    expected = {
        "chat": {"requests": 4, "prompt_tokens": 9, "completion_tokens": 8},
        "embeddings": {"requests": 1, "input_tokens": 3},
        "images": {"requests": 2, "images": 3, "megapixels": round((2 * 128 * 64 + 64 * 64) / 1e6, 6)},
        "transcribe": {"requests": 1, "audio_seconds": 3.25},
    }
    body = totals_when(gw, issued.id, expected)
    assert body["totals"] == expected
    today = datetime.now(UTC).date().isoformat()
    assert body["from"] == body["to"] == today
    assert body["days"] == [{"date": today, "surfaces": expected, "spend_usd": 0.0}]  # billing is off here
    assert body["spend_usd"] == 0.0

    # The same numbers from the command line.
    env = {**os.environ, "REDIS_URL": redis_url, "DRYAPI_REDIS_PREFIX": gw.settings.redis_prefix}
    week_ago = (datetime.now(UTC).date() - timedelta(days=6)).isoformat()
    cli = [sys.executable, "-m", "app", "keys", "usage", issued.id, "--from", week_ago]
    as_json = subprocess.run([*cli, "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["totals"] == expected and len(report["days"]) == 7
    assert [d["surfaces"] for d in report["days"][:-1]] == [{}] * 6
    text = subprocess.run(cli, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert text.returncode == 0, text.stderr
    assert f"{today}  transcribe  requests=1  audio_seconds=3.25" in text.stdout
    assert "total       chat        requests=4  prompt_tokens=9  completion_tokens=8" in text.stdout


def test_usage_route_is_admin_only_and_checks_dates(gw: Gateway) -> None:
    issued = gw.issue_key("curious", tier="basic")
    mine = httpx.get(
        f"{gw.url}/admin/usage", params={"key_id": issued.id}, headers={"authorization": f"Bearer {issued.key}"}
    )
    assert mine.status_code == 403
    empty = usage(gw, issued.id, **{"from": "2024-02-28", "to": "2024-03-01"})
    assert empty.status_code == 200
    assert [d["date"] for d in empty.json()["days"]] == ["2024-02-28", "2024-02-29", "2024-03-01"]
    assert empty.json()["totals"] == {}
    for params, param in (
        ({"from": "yesterday"}, "from"),
        ({"from": "2024-02-30"}, "from"),
        ({"from": "2024-03-02", "to": "2024-03-01"}, "from"),
        ({"from": "2020-01-01", "to": "2024-01-01"}, "from"),
    ):
        bad = usage(gw, issued.id, **params)
        assert bad.status_code == 400, params
        assert bad.json()["error"]["param"] == param
    missing = httpx.get(f"{gw.url}/admin/usage", headers=ADMIN)
    assert missing.status_code == 400


@pytest.mark.process
def test_cli_rejects_bad_dates(redis_url: str, redis_prefix: str) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "DRYAPI_REDIS_PREFIX": redis_prefix}
    result = subprocess.run(
        [sys.executable, "-m", "app", "keys", "usage", "key_x", "--to", "31-01-2025"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "to must be a date" in result.stderr
