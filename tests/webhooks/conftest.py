"""Fixtures: a real local receiver, outboxes on a private Redis prefix, and a runner for their loops."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.store import Keys, create_redis
from app.webhooks import WebhookOutbox
from tests.support.servers import ServerThread, serve
from tests.webhooks.receiver import Receiver

SECRETS = {"key_a": "whsec_alpha", "key_b": "whsec_bravo"}


@pytest.fixture(scope="session")
def receiver() -> Iterator[tuple[Receiver, ServerThread]]:
    app = Receiver()
    with serve(app) as server:
        yield app, server


@pytest.fixture
def token() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def webhook_prefix(redis_prefix: str) -> str:
    return f"{redis_prefix}wh{uuid.uuid4().hex[:8]}:"


async def secret_from(key_id: str) -> str | None:
    """key_a and key_b have fixed secrets, ``missing*`` keys none, any other key its own."""
    if key_id.startswith("missing"):
        return None
    return SECRETS.get(key_id, f"whsec_{key_id}")


OutboxFactory = Callable[..., WebhookOutbox]


@pytest.fixture
async def make_outbox(redis_url: str, webhook_prefix: str) -> AsyncIterator[OutboxFactory]:
    clients: list[aioredis.Redis] = []

    def factory(**overrides: Any) -> WebhookOutbox:
        client = create_redis(redis_url)
        clients.append(client)
        options: dict[str, Any] = {
            "secret_for": secret_from,
            "schedule": (0, 0.2, 0.2),
            "allowlist": frozenset({"127.0.0.1"}),
            "timeout_s": 2.0,
            "poll_interval_s": 0.05,
        }
        options.update(overrides)
        return WebhookOutbox(client, Keys(webhook_prefix), **options)

    yield factory
    for client in clients:
        await client.aclose()


@asynccontextmanager
async def running(*outboxes: WebhookOutbox) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(outbox.run(stop)) for outbox in outboxes]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)


async def eventually(check: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
