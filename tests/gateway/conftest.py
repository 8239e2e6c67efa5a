"""A real gateway on a real port, in front of the project's RunPod emulator running test workers."""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from app.keys import IssuedKey, KeyStore
from app.main import create_app
from app.routing.loader import parse_routing
from app.serving import server_options
from app.settings import Settings
from app.store import Keys, create_redis
from tests.support.servers import ServerThread, free_port

RUNPOD_KEY = "rp-test-key"
ADMIN_KEY = "admin-test-key"

ROUTING = """
upstream: {{base_url: "{upstream}", api_key: "{runpod_key}"}}
surfaces:
  chat:
    default_model: tiny-chat
    sync_timeout_s: 10
    models:
      tiny-chat: {{endpoint_id: chat-ep, upstream_model: org/tiny-chat, aliases: [tc]}}
      unrouted-chat: {{endpoint_id: ""}}
      limited-chat: {{endpoint_id: limited, base_url: "{limited}"}}
  embeddings:
    default_model: tiny-embed
    models:
      tiny-embed: {{endpoint_id: emb-ep, upstream_model: org/tiny-embed, aliases: [te]}}
  images:
    default_model: tiny-image
    sync_timeout_s: 2
    models:
      tiny-image: {{endpoint_id: img-ep, upstream_model: org/tiny-image, pass_through: [output_format]}}
  transcribe:
    default_model: tiny-whisper
    models:
      tiny-whisper: {{endpoint_id: stt-ep, upstream_model: tiny, aliases: [whisper-1]}}
"""


@dataclass
class Gateway:
    url: str
    settings: Settings
    app: Any
    server: ServerThread

    @property
    def services(self) -> Any:
        return self.app.state.services

    def issue_key(self, name: str = "tester", *, admin: bool = False, tier: str = "default") -> IssuedKey:
        async def create() -> IssuedKey:
            redis = create_redis(self.settings.redis_url)
            try:
                return await KeyStore(redis, Keys(self.settings.redis_prefix)).create(name, tier=tier, admin=admin)
            finally:
                await redis.aclose()

        return asyncio.run(create())

    def services_polls(self) -> int:
        polls: int = self.app.state.watcher.polls
        return polls

    def client(self, key: str, prefix: str = "/v1", **options: Any) -> openai.OpenAI:
        options.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=f"{self.url}{prefix}", api_key=key, **options)


def start_gateway(upstream: str, redis_url: str, prefix: str, **overrides: Any) -> Gateway:
    port = free_port()
    limited = overrides.pop("limited_upstream", upstream)
    webhooks = overrides.pop("webhooks", None)
    # A busy 2-core CI machine can stall a Redis reply past the 250 ms production default; the
    # tests of that bound (tests/limits/test_redis_failure.py) pass their own.
    overrides.setdefault("redis_timeout_s", 2.0)
    routing_text = overrides.pop("routing", None) or ROUTING.format(
        upstream=upstream, runpod_key=RUNPOD_KEY, limited=limited
    )
    settings = Settings(
        redis_url=redis_url,
        redis_prefix=prefix,
        public_url=overrides.pop("public_url", f"http://127.0.0.1:{port}"),
        signing_secret="test-signing-secret",
        signing_secret_is_random=False,
        **overrides,
    )
    app = create_app(settings, parse_routing(textwrap.dedent(routing_text), "test-routing.yaml"), webhooks)
    server = ServerThread(app, port=port, **server_options(settings)).start()
    return Gateway(server.url, settings, app, server)


@pytest.fixture(scope="session")
def emulator() -> Iterator[ServerThread]:
    endpoints = {
        "chat-ep": EmulatorEndpoint(handler="tests.gateway.workers:chat", concurrency=8),
        "emb-ep": EmulatorEndpoint(handler="tests.gateway.workers:embeddings", concurrency=8),
        "img-ep": EmulatorEndpoint(handler="tests.gateway.workers:images", concurrency=4),
        "stt-ep": EmulatorEndpoint(handler="tests.gateway.workers:transcribe", concurrency=4),
    }
    server = ServerThread(create_emulator_app(endpoints, api_key=RUNPOD_KEY)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway(emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    gw = start_gateway(
        f"{emulator.url}/v2",
        redis_url,
        redis_prefix,
        admin_key=ADMIN_KEY,
        inline_audio_max_bytes=2048,
        max_audio_bytes=200_000,
        media_allowlist=frozenset({"127.0.0.1"}),
        webhook_allowlist=frozenset({"127.0.0.1"}),
    )
    yield gw
    gw.server.stop()


@pytest.fixture(scope="session")
def api_key(gateway: Gateway) -> str:
    return gateway.issue_key("session-tenant").key


# The openai SDK suites that also run against OpenRouter's layout (the /v1 routes mirrored under
# /api/v1), unchanged: their ``client`` fixture is parametrized over both prefixes.
MIRRORED_MODULES = frozenset({"test_chat", "test_embeddings", "test_images", "test_transcribe"})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if "api_prefix" in metafunc.fixturenames and module in MIRRORED_MODULES:
        metafunc.parametrize("api_prefix", ["/v1", "/api/v1"])


@pytest.fixture
def api_prefix() -> str:
    return "/v1"


@pytest.fixture
def client(gateway: Gateway, api_key: str, api_prefix: str) -> openai.OpenAI:
    return gateway.client(api_key, api_prefix)


def unique() -> str:
    return uuid.uuid4().hex[:8]
