"""Two gateway replicas on one Redis, in front of the RunPod emulator, with realtime events on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from tests.gateway.conftest import RUNPOD_KEY, Gateway, start_gateway
from tests.support.servers import ServerThread

APP_KEY = "test-app-key"
APP_SECRET = "test-app-secret"


@pytest.fixture(scope="session")
def emulator() -> Iterator[ServerThread]:
    """Images run the painter (progress with a preview); the other surfaces are unused here."""
    endpoints = {"img-ep": EmulatorEndpoint(handler="tests.realtime.workers:painter", concurrency=8)}
    server = ServerThread(create_emulator_app(endpoints, api_key=RUNPOD_KEY)).start()
    yield server
    server.stop()


def realtime_gateway(emulator: ServerThread, redis_url: str, prefix: str, **overrides: Any) -> Gateway:
    overrides.setdefault("pusher_app_key", APP_KEY)
    overrides.setdefault("pusher_app_secret", APP_SECRET)
    return start_gateway(f"{emulator.url}/v2", redis_url, prefix, **overrides)


@pytest.fixture(scope="session")
def replicas(emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[tuple[Gateway, Gateway]]:
    """Two gateway apps sharing one Redis prefix: events reach sockets on either."""
    first = realtime_gateway(emulator, redis_url, redis_prefix)
    second = realtime_gateway(emulator, redis_url, redis_prefix)
    yield first, second
    first.server.stop()
    second.server.stop()


@pytest.fixture(scope="session")
def gateway(replicas: tuple[Gateway, Gateway]) -> Gateway:
    return replicas[0]


def ws_url(gateway: Gateway, key: str = APP_KEY, query: str = "protocol=7&client=test&version=1") -> str:
    return f"ws://{urlsplit(gateway.url).netloc}/app/{key}?{query}"
