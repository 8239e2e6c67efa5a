"""Reload on content change, ConfigMap symlink swap, invalid edits, the admin routes, in-flight work."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis
from prometheus_client import REGISTRY

from tests.gateway.conftest import ADMIN_KEY, Gateway, start_gateway
from tests.routing_reload.conftest import model_ids, routing_text, sha256_of, wait_for
from tests.support.servers import free_port

Start = Callable[..., tuple[Gateway, Path]]
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def _reloads(result: str) -> float:
    return REGISTRY.get_sample_value("dryapi_routing_reloads_total", {"result": result}) or 0.0


def _replace(path: Path, text: str) -> None:
    """Write beside, then rename over: how editors and config tools replace a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_content_change_is_served_within_5s(watched: Start, upstream: str) -> None:
    gateway, path = watched()
    assert model_ids(gateway.url, ADMIN_KEY) == {"model-a", "tiny-image"}
    path.write_text(routing_text(upstream, chat_model="model-b"))  # in place, like `vi`
    wait_for(lambda: "model-b" in model_ids(gateway.url, ADMIN_KEY))
    assert "model-a" not in model_ids(gateway.url, ADMIN_KEY)
    assert gateway.services.routing.loaded.sha256 == sha256_of(path)
    assert gateway.services.routing.loaded.source == str(path)


def test_configmap_symlink_swap_is_seen(watched: Start, upstream: str, tmp_path: Path) -> None:
    # Kubernetes' layout: routing.yaml -> ..data/routing.yaml, ..data -> ..<timestamp>/
    mount = tmp_path / "configmap"
    first = mount / "..2024_01_01_00_00_00.1"
    first.mkdir(parents=True)
    (first / "routing.yaml").write_text(routing_text(upstream))
    (mount / "..data").symlink_to(first.name)
    (mount / "routing.yaml").symlink_to("..data/routing.yaml")
    gateway, _ = watched(mount / "routing.yaml")
    assert "model-a" in model_ids(gateway.url, ADMIN_KEY)

    second = mount / "..2024_01_01_00_01_00.2"
    second.mkdir()
    (second / "routing.yaml").write_text(routing_text(upstream, chat_model="model-c"))
    (mount / "..data_tmp").symlink_to(second.name)
    os.replace(mount / "..data_tmp", mount / "..data")  # the atomic swap kubelet performs
    wait_for(lambda: "model-c" in model_ids(gateway.url, ADMIN_KEY))
    assert gateway.services.routing.loaded.sha256 == sha256_of(second / "routing.yaml")


def test_invalid_edit_keeps_the_last_good_config(watched: Start, upstream: str) -> None:
    gateway, path = watched()
    good_sha = gateway.services.routing.loaded.sha256
    errors = _reloads("error")
    bad = routing_text(upstream).replace("endpoint_id: chat-ep", "endpoint_id: chat-ep, sync_timeout: 3")
    _replace(path, bad)
    wait_for(lambda: _reloads("error") == errors + 1)
    time.sleep(1.5)  # more polls of the same bad content are not new errors
    assert _reloads("error") == errors + 1
    assert gateway.services.routing.loaded.sha256 == good_sha
    assert model_ids(gateway.url, ADMIN_KEY) == {"model-a", "tiny-image"}

    status = httpx.get(f"{gateway.url}/admin/routing", headers=ADMIN, timeout=5).json()
    assert status["sha256"] == good_sha
    problems = status["last_error"]["problems"]
    assert {"path": "surfaces.chat.models.model-a.sync_timeout", "message": "unknown key"} in problems
    assert status["last_error"]["file_sha256"] == sha256_of(path)
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=5)
    if metrics.status_code == 200:  # exported once /metrics is wired
        assert 'dryapi_routing_reloads_total{result="error"}' in metrics.text

    _replace(path, "surfaces: [not, a, mapping")  # broken YAML: a second, distinct error
    wait_for(lambda: _reloads("error") == errors + 2)
    ok = _reloads("ok")
    _replace(path, routing_text(upstream, chat_model="model-d"))
    wait_for(lambda: "model-d" in model_ids(gateway.url, ADMIN_KEY))
    assert _reloads("ok") == ok + 1
    assert httpx.get(f"{gateway.url}/admin/routing", headers=ADMIN, timeout=5).json()["last_error"] is None


def test_admin_routes(watched: Start, upstream: str) -> None:
    gateway, path = watched(routing_poll_s=0)  # only the admin route reloads here
    tenant = gateway.issue_key("not-admin").key
    for method, route in (("GET", "/admin/routing"), ("POST", "/admin/routing/reload")):
        response = httpx.request(method, f"{gateway.url}{route}", headers={"authorization": f"Bearer {tenant}"})
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "permission_denied"

    before = time.time()
    unchanged = httpx.post(f"{gateway.url}/admin/routing/reload", headers=ADMIN, timeout=5)
    assert unchanged.status_code == 200 and unchanged.json()["result"] == "unchanged"

    path.write_text(routing_text(upstream, chat_model="model-e"))
    reloaded = httpx.post(f"{gateway.url}/admin/routing/reload", headers=ADMIN, timeout=5).json()
    assert reloaded["result"] == "ok" and reloaded["trigger"] == "admin"
    assert reloaded["sha256"] == sha256_of(path) != reloaded["previous_sha256"]
    assert "model-e" in model_ids(gateway.url, ADMIN_KEY)

    status: dict[str, Any] = httpx.get(f"{gateway.url}/admin/routing", headers=ADMIN, timeout=5).json()
    assert status["source"] == str(path) and status["sha256"] == sha256_of(path)
    loaded_at = status["loaded_at"]
    assert loaded_at.endswith("Z") and time.strptime(loaded_at[:19], "%Y-%m-%dT%H:%M:%S")
    assert gateway.services.routing.loaded_at >= before
    config = status["config"]
    assert config["upstream"]["api_key"] == "***"
    assert config["upstream"]["base_url"] == upstream
    assert config["local"]["endpoints"]["local-chat"]["env"] == {"HF_TOKEN": "***", "LOG_LEVEL": "debug"}
    assert config["surfaces"]["chat"]["models"]["model-e"]["endpoint_id"] == "chat-ep"
    raw = httpx.get(f"{gateway.url}/admin/routing", headers=ADMIN, timeout=5).text
    assert "rp-test-key" not in raw and "hf-secret-value" not in raw

    path.write_text("upstream: {base_url: 'ftp://user:pw@host'}\n")
    refused = httpx.post(f"{gateway.url}/admin/routing/reload", headers=ADMIN, timeout=5)
    assert refused.status_code == 422
    body = refused.json()
    assert body["result"] == "error" and body["sha256"] == reloaded["sha256"]
    assert [p["path"] for p in body["problems"]] == ["upstream.base_url"]
    assert "pw@" not in refused.text  # credentials in a quoted URL are masked
    assert "model-e" in model_ids(gateway.url, ADMIN_KEY)


def test_in_flight_requests_finish_on_their_config(watched: Start, upstream: str) -> None:
    gateway, path = watched(routing_poll_s=0)
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    images = f"{gateway.url}/v1/images/generations"
    # An async job polled for later, and a sync request still waiting on its worker.
    queued = httpx.post(images, json={"prompt": "slow 2", "response_format": "b64_json"},
                        headers={**headers, "prefer": "respond-async"}, timeout=10)
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["id"]
    answers: list[httpx.Response] = []
    sync = threading.Thread(target=lambda: answers.append(httpx.post(
        images, json={"prompt": "slow 2", "response_format": "b64_json"}, headers=headers, timeout=30)))
    sync.start()
    time.sleep(0.5)

    # The model now points at an endpoint the emulator does not have: only new requests see it.
    path.write_text(routing_text(upstream, image_endpoint="img-gone"))
    assert httpx.post(f"{gateway.url}/admin/routing/reload", headers=ADMIN, timeout=5).json()["result"] == "ok"
    fresh = httpx.post(images, json={"prompt": "fast", "response_format": "b64_json"}, headers=headers, timeout=10)
    assert fresh.status_code >= 400, fresh.text

    sync.join(timeout=20)
    assert answers and answers[0].status_code == 200, answers and answers[0].text
    assert answers[0].json()["data"][0]["b64_json"]

    def finished() -> bool:
        body = httpx.get(f"{gateway.url}/v1/jobs/images/{job_id}", headers=headers, timeout=5).json()
        return bool(body["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"))

    wait_for(finished, timeout=15, interval=0.2)
    body = httpx.get(f"{gateway.url}/v1/jobs/images/{job_id}", headers=headers, timeout=5).json()
    assert body["status"] == "COMPLETED", body
    assert body["output"]["data"][0]["b64_json"]


def test_a_config_not_from_the_file_is_not_replaced_by_polling(
    upstream: str, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    # Apps built around a config from elsewhere (every other test suite) ignore ./routing.yaml edits.
    path = tmp_path / "routing.yaml"
    path.write_text(routing_text(upstream))
    gateway = start_gateway(upstream, redis_url, prefix, routing=routing_text(upstream, chat_model="given"),
                            routing_path=str(path), admin_key=ADMIN_KEY)
    try:
        path.write_text(routing_text(upstream, chat_model="edited"))
        time.sleep(1.5)
        assert "given" in model_ids(gateway.url, ADMIN_KEY)
        reloaded = httpx.post(f"{gateway.url}/admin/routing/reload", headers=ADMIN, timeout=5).json()
        assert reloaded["result"] == "ok"  # an explicit reload still reads the file
        assert "edited" in model_ids(gateway.url, ADMIN_KEY)
    finally:
        gateway.server.stop()


@pytest.mark.process
def test_reload_works_while_redis_hangs(watched: Start, upstream: str, tmp_path: Path) -> None:
    # A private redis-server, frozen with SIGSTOP: connections hang instead of failing fast.
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _redis_up(port), timeout=10)
        gateway, path = watched(redis_url=f"redis://127.0.0.1:{port}/0")
        redis.send_signal(signal.SIGSTOP)
        path.write_text(routing_text(upstream, chat_model="model-f"))
        wait_for(lambda: "model-f" in model_ids(gateway.url, ADMIN_KEY))  # polling needs no Redis
        path.write_text(routing_text(upstream, chat_model="model-g"))
        started = time.monotonic()
        reloaded = httpx.post(f"{gateway.url}/admin/routing/reload", headers=ADMIN, timeout=10).json()
        assert reloaded["result"] in ("ok", "unchanged")
        assert time.monotonic() - started < 4  # the broadcast is bounded, the reload itself stands
        assert "model-g" in model_ids(gateway.url, ADMIN_KEY)
    finally:
        redis.kill()
        redis.wait(timeout=10)


def _redis_up(port: int) -> bool:
    try:
        return bool(sync_redis.Redis(port=port, socket_connect_timeout=0.5).ping())
    except sync_redis.RedisError:
        return False
