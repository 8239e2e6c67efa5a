"""Fixtures for live routing reload: a routing file on disk, a gateway watching it, an emulator."""

from __future__ import annotations

import hashlib
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from app.main import create_app
from app.routing.loader import load_routing
from app.settings import Settings
from tests.gateway.conftest import ADMIN_KEY, RUNPOD_KEY, Gateway
from tests.support.servers import ServerThread

ROUTING = """
upstream: {{base_url: "{upstream}", api_key: "{runpod_key}"}}
surfaces:
  chat:
    default_model: {chat_model}
    models:
      {chat_model}: {{endpoint_id: chat-ep}}
  images:
    default_model: tiny-image
    sync_timeout_s: 20
    models:
      tiny-image: {{endpoint_id: {image_endpoint}}}
local:
  endpoints:
    local-chat:
      handler: "tests.gateway.workers:chat"
      env: {{HF_TOKEN: "hf-secret-value", LOG_LEVEL: "debug"}}
"""


def routing_text(upstream: str, *, chat_model: str = "model-a", image_endpoint: str = "img-a") -> str:
    return textwrap.dedent(ROUTING).format(
        upstream=upstream, runpod_key=RUNPOD_KEY, chat_model=chat_model, image_endpoint=image_endpoint
    )


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_ids(url: str, key: str) -> set[str]:
    # A fresh connection per call, so with several workers each answer may come from another one.
    response = httpx.get(f"{url}/v1/models", headers={"authorization": f"Bearer {key}"}, timeout=5)
    assert response.status_code == 200, response.text
    return {m["id"] for m in response.json()["data"]}


def wait_for(check: Callable[[], bool], timeout: float = 5.0, interval: float = 0.05) -> float:
    """Seconds until ``check()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not within {timeout}s"
        time.sleep(interval)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def emulator() -> Iterator[ServerThread]:
    endpoints = {
        "chat-ep": EmulatorEndpoint(handler="tests.gateway.workers:chat", concurrency=4),
        "img-a": EmulatorEndpoint(handler="tests.gateway.workers:images", concurrency=4),
    }
    server = ServerThread(create_emulator_app(endpoints, api_key=RUNPOD_KEY)).start()
    yield server
    server.stop()


@pytest.fixture
def upstream(emulator: ServerThread) -> str:
    return f"{emulator.url}/v2"


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    # Own channel and keys per test: a reload broadcast never reaches another test's gateway.
    return f"{redis_prefix}reload-{uuid.uuid4().hex[:6]}:"


@pytest.fixture
def watched(
    tmp_path: Path, upstream: str, redis_url: str, prefix: str
) -> Iterator[Callable[..., tuple[Gateway, Path]]]:
    """Start a gateway (in a thread) serving, and watching, a routing file in tmp_path."""
    started: list[Gateway] = []

    def start(path: Path | None = None, **overrides: Any) -> tuple[Gateway, Path]:
        path = path or tmp_path / "routing.yaml"
        if not path.exists():
            path.write_text(routing_text(upstream))
        options: dict[str, Any] = {
            "redis_url": redis_url,
            "redis_prefix": prefix,
            "signing_secret": "test-signing-secret",
            "signing_secret_is_random": False,
            "admin_key": ADMIN_KEY,
            "routing_path": str(path),
        }
        settings = Settings(**{**options, **overrides})
        # Loaded from the watched file, as `serve` does: the reloader follows only such configs.
        app = create_app(settings, load_routing(path))
        server = ServerThread(app).start()
        gateway = Gateway(server.url, settings, app, server)
        started.append(gateway)
        return gateway, path

    yield start
    for gateway in started:
        gateway.server.stop()
