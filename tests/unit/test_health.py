"""app/health.py: what /readyz counts as a configured upstream and a live Redis."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import redis.asyncio as aioredis

from app.health import _redis_ok, _upstream, healthz
from app.routing import parse_routing
from app.serving import free_port
from app.settings import Settings


def _services(routing: str, *, local_upstream: str | None = None, redis: Any = None) -> Any:
    # Only the parts of Services that the checks read.
    config = parse_routing(routing, env={}).config
    settings = Settings(local_upstream=local_upstream)
    return SimpleNamespace(settings=settings, routing=SimpleNamespace(config=config), redis=redis)


async def test_liveness_checks_nothing() -> None:
    assert await healthz.fn() == {"status": "ok"}


def test_an_upstream_is_configured_when_one_model_can_be_routed() -> None:
    keyed = 'upstream: {api_key: k}\nsurfaces: {chat: {models: {a: {endpoint_id: ""}, b: {endpoint_id: ep}}}}'
    assert _upstream(_services(keyed)) is True
    no_key = "surfaces: {chat: {models: {b: {endpoint_id: ep}}}}"
    assert _upstream(_services(no_key)) is False
    own_base = 'surfaces: {chat: {models: {b: {endpoint_id: ep, base_url: "http://10.0.0.9/v2"}}}}'
    assert _upstream(_services(own_base)) is True  # its own upstream needs no RunPod key
    no_endpoint = 'upstream: {api_key: k}\nsurfaces: {chat: {models: {a: {endpoint_id: ""}}}}'
    assert _upstream(_services(no_endpoint)) is False
    assert _upstream(_services("")) is False
    assert _upstream(_services("", local_upstream="http://127.0.0.1:9/v2")) == "local"


async def test_redis_is_ok_only_when_it_answers(redis_url: str) -> None:
    live = aioredis.Redis.from_url(redis_url)
    dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        assert await _redis_ok(_services("", redis=live)) is True
        assert await _redis_ok(_services("", redis=dead)) is False
    finally:
        await live.aclose()
        await dead.aclose()
