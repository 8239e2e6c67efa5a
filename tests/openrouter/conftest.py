"""The official ``openrouter`` SDK against real gateways serving the shipped routing.yaml.

``billed``/``free`` (billing on/off) in front of an emulator whose workers answer fully or barely
(tests/openrouter/shape_workers.py); the media tests' fixtures start with ``media_``: a billed
gateway in front of contract-following fake workers (tests/openrouter/media_workers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from openrouter import OpenRouter

from app.emulator import EmulatorEndpoint, create_emulator_app
from tests.billing.conftest import new_key, start_billing_gateway
from tests.gateway.conftest import RUNPOD_KEY, Gateway
from tests.openrouter.media_support import Tenant
from tests.support.servers import ServerThread

CHAT_MODEL = "Llama3_8B_Instruct"
EMBED_MODEL = "Bge_M3_INT8"


@pytest.fixture(scope="session")
def or_emulator() -> Iterator[ServerThread]:
    endpoints = {
        "chat-ep": EmulatorEndpoint(handler="tests.openrouter.shape_workers:chat", concurrency=4),
        "emb-ep": EmulatorEndpoint(handler="tests.openrouter.shape_workers:embeddings", concurrency=2),
        "img-ep": EmulatorEndpoint(handler="tests.native.workers:images", concurrency=2),
    }
    server = ServerThread(create_emulator_app(endpoints, api_key=RUNPOD_KEY)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def billed(or_emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    """Billing on: every answer carries ``usage.cost``, the key has credits."""
    gw = start_billing_gateway(f"{or_emulator.url}/v2", redis_url, f"{redis_prefix}or-billed:")
    yield gw
    gw.server.stop()


@pytest.fixture(scope="session")
def free(or_emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    """Billing off: ``usage.cost`` only when the request asks (``usage: {"include": true}``)."""
    gw = start_billing_gateway(f"{or_emulator.url}/v2", redis_url, f"{redis_prefix}or-free:", enabled=False)
    yield gw
    gw.server.stop()


def sdk(gateway: Gateway, key: str) -> OpenRouter:
    """The SDK as a user configures it: only the server URL changes."""
    return OpenRouter(api_key=key, server_url=f"{gateway.url}/api/v1")


def http(gateway: Gateway, key: str) -> httpx.Client:
    return httpx.Client(base_url=f"{gateway.url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture
def billed_key(billed: Gateway) -> tuple[str, str]:
    """(key, key id): a fresh key with the sign-up balance."""
    return new_key(billed)


@pytest.fixture
def free_key(free: Gateway) -> tuple[str, str]:
    return new_key(free)


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
