"""Fixtures of the OpenRouter media tests (names start with ``media_``): a real gateway serving the
shipped routing.yaml with billing on, in front of the emulator running contract-following fake
workers (tests/openrouter/media_workers.py for speech and video)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from tests.billing.conftest import start_billing_gateway
from tests.gateway.conftest import RUNPOD_KEY, Gateway
from tests.openrouter.media_support import Tenant
from tests.support.servers import ServerThread


@pytest.fixture(scope="session")
def media_emulator() -> Iterator[ServerThread]:
    endpoints = {
        "img-ep": EmulatorEndpoint(handler="tests.native.workers:images", concurrency=4),
        "stt-ep": EmulatorEndpoint(handler="tests.native.workers:transcribe", concurrency=2),
        "media-ep": EmulatorEndpoint(handler="tests.openrouter.media_workers:media", concurrency=4),
    }
    server = ServerThread(create_emulator_app(endpoints, api_key=RUNPOD_KEY)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def media_gateway(media_emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    gw = start_billing_gateway(f"{media_emulator.url}/v2", redis_url, f"{redis_prefix}ormedia:")
    yield gw
    gw.server.stop()


@pytest.fixture
def media_tenant(media_gateway: Gateway) -> Iterator[Tenant]:
    tenant = Tenant(media_gateway)
    yield tenant
    tenant.close()


@pytest.fixture
def media_twin(media_gateway: Gateway) -> Iterator[Tenant]:
    """A second key, for the same request on the /v1 (or native) twin route."""
    tenant = Tenant(media_gateway)
    yield tenant
    tenant.close()
