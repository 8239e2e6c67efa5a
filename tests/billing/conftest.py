"""A gateway serving the shipped routing.yaml (its prices, its model limits) with billing on, in
front of the emulator running the native tests' contract-following fake workers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from app.keys import KeyStore
from app.main import create_app
from app.routing.loader import parse_routing
from app.serving import websocket_options
from app.settings import Settings
from app.store import Keys, create_redis
from tests.gateway.conftest import ADMIN_KEY, RUNPOD_KEY, Gateway
from tests.support.servers import ServerThread, free_port

ROOT = Path(__file__).resolve().parents[2]
INITIAL_USD = 5.0

# Every shipped model's endpoint id, pointed at one emulator endpoint per worker dialect; music and
# LTX-Video run on a worker that sleeps when asked to (tests/billing/workers.py).
ENDPOINTS = {
    "RUNPOD_CHAT_ENDPOINT_ID": "chat-ep", "RUNPOD_OCR_ENDPOINT_ID": "ocr-ep", "RUNPOD_IMAGES_ENDPOINT_ID": "img-ep",
    "RUNPOD_ZIMAGE_ENDPOINT_ID": "img-ep", "RUNPOD_FLUX2_ENDPOINT_ID": "img-ep",
    "RUNPOD_IMAGE_EDIT_ENDPOINT_ID": "img-ep", "RUNPOD_RMBG_ENDPOINT_ID": "img-ep",
    "RUNPOD_UPSCALE_ENDPOINT_ID": "img-ep", "RUNPOD_TRANSCRIBE_ENDPOINT_ID": "stt-ep",
    "RUNPOD_EMBEDDINGS_ENDPOINT_ID": "emb-ep", "RUNPOD_SPEECH_ENDPOINT_ID": "media-ep",
    "RUNPOD_SPEECH_CLONE_ENDPOINT_ID": "media-ep", "RUNPOD_SPEECH_DESIGN_ENDPOINT_ID": "media-ep",
    "RUNPOD_MUSIC_ENDPOINT_ID": "slow-ep", "RUNPOD_VIDEO_LTXV_ENDPOINT_ID": "slow-ep",
    "RUNPOD_VIDEO_LTX2_ENDPOINT_ID": "media-ep", "RUNPOD_VIDEO_LTX23_ENDPOINT_ID": "media-ep",
}


MUSIC_POLICY = "  music:\n    default_model: ACE-Step-v1.5-turbo\n    mode: async\n    sync_timeout_s: 600\n" \
    "    policy: {execution_timeout_s: 1800"
MUSIC_TIMEOUT_S = 5  # music jobs time out fast here, so one can be seen TIMED_OUT


def shipped_routing(*, enabled: bool) -> str:
    text = (ROOT / "routing.yaml").read_text()
    assert MUSIC_POLICY in text and "billing:\n  enabled: false" in text
    text = text.replace(MUSIC_POLICY, MUSIC_POLICY.replace("1800", str(MUSIC_TIMEOUT_S)))
    return text.replace("billing:\n  enabled: false", f"billing:\n  enabled: {str(enabled).lower()}")


def start_billing_gateway(upstream: str, redis_url: str, prefix: str, *, enabled: bool = True) -> Gateway:
    env = {**ENDPOINTS, "RUNPOD_API_BASE": upstream, "RUNPOD_API_KEY": RUNPOD_KEY}
    routing = parse_routing(shipped_routing(enabled=enabled), "shipped-routing-for-billing-tests.yaml", env=env)
    port = free_port()
    settings = Settings(
        redis_url=redis_url, redis_prefix=prefix, public_url=f"http://127.0.0.1:{port}",
        signing_secret="test-signing-secret", signing_secret_is_random=False, admin_key=ADMIN_KEY,
        media_allowlist=frozenset({"127.0.0.1"}), webhook_allowlist=frozenset({"127.0.0.1"}),
        redis_timeout_s=5.0,  # a busy test machine's slow Redis call must not turn into a 503
    )
    app = create_app(settings, routing)
    server = ServerThread(app, port=port, **websocket_options(settings.ws_compression)).start()
    return Gateway(server.url, settings, app, server)


@pytest.fixture(scope="session")
def billing_emulator() -> Iterator[ServerThread]:
    endpoints = {
        "img-ep": EmulatorEndpoint(handler="tests.native.workers:images", concurrency=4),
        "media-ep": EmulatorEndpoint(handler="tests.native.workers:media", concurrency=4),
        "stt-ep": EmulatorEndpoint(handler="tests.native.workers:transcribe", concurrency=2),
        "ocr-ep": EmulatorEndpoint(handler="tests.native.workers:ocr", concurrency=2),
        "emb-ep": EmulatorEndpoint(handler="tests.gateway.workers:embeddings", concurrency=2),
        "chat-ep": EmulatorEndpoint(handler="tests.gateway.workers:chat", concurrency=4),
        "slow-ep": EmulatorEndpoint(handler="tests.billing.workers:slow_media", concurrency=4),
    }
    server = ServerThread(create_emulator_app(endpoints, api_key=RUNPOD_KEY)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def billing_gateway(billing_emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    gw = start_billing_gateway(f"{billing_emulator.url}/v2", redis_url, f"{redis_prefix}billing:")
    yield gw
    gw.server.stop()


class Client:
    """The native API as the seeds' SDK calls it, for one key."""

    def __init__(self, gateway: Gateway, key: str, key_id: str) -> None:
        self.gateway = gateway
        self.key_id = key_id
        self.base = f"{gateway.url}/api/v1/client"
        self.http = httpx.Client(headers={"Authorization": f"Bearer {key}", "Accept": "application/json"}, timeout=30)

    def price(self, task: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(f"{self.base}/{task}/price-calculation", **kwargs)

    def balance(self) -> float:
        response = self.http.get(f"{self.base}/balance")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["data"]["currency"] == "USD"
        value: float = body["data"]["balance"]
        return value


def new_key(gateway: Gateway, *, tier: str = "default") -> tuple[str, str]:
    async def create() -> tuple[str, str]:
        redis = create_redis(gateway.settings.redis_url)
        try:
            issued = await KeyStore(redis, Keys(gateway.settings.redis_prefix)).create(
                f"billing-{uuid.uuid4().hex[:6]}", tier=tier
            )
            return issued.key, issued.id
        finally:
            await redis.aclose()

    return asyncio.run(create())


@pytest.fixture
def client(billing_gateway: Gateway) -> Iterator[Client]:
    key, key_id = new_key(billing_gateway)
    made = Client(billing_gateway, key, key_id)
    yield made
    made.http.close()
