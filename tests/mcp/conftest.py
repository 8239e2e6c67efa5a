"""Gateways serving ``/mcp`` in front of the native tests' emulator and fake workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from app.emulator import EmulatorEndpoint, create_emulator_app
from tests.gateway.conftest import ADMIN_KEY, RUNPOD_KEY, Gateway, start_gateway
from tests.native.conftest import ROUTING, native_emulator  # noqa: F401 - the shared emulator fixture
from tests.support.servers import ServerThread


def _gateway(emulator: ServerThread, redis_url: str, prefix: str, wait_s: float) -> Gateway:
    upstream = f"{emulator.url}/v2"
    return start_gateway(
        upstream, redis_url, prefix,
        routing=ROUTING.format(upstream=upstream, runpod_key=RUNPOD_KEY),
        admin_key=ADMIN_KEY,
        media_allowlist=frozenset({"127.0.0.1"}),
        mcp_wait_s=wait_s,
    )


@pytest.fixture(scope="module")
def mcp_gateway(native_emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:  # noqa: F811
    gw = _gateway(native_emulator, redis_url, f"{redis_prefix}mcp:", 20.0)
    yield gw
    gw.server.stop()


@pytest.fixture(scope="module")
def slow_emulator() -> Iterator[ServerThread]:
    endpoints = {"emb-ep": EmulatorEndpoint(handler="tests.mcp.workers:slow_embeddings", concurrency=2)}
    server = ServerThread(create_emulator_app(endpoints, api_key=RUNPOD_KEY)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def impatient_gateway(slow_emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    """Its tools never wait (and its embeddings take a while): every job comes back as a job id to poll."""
    gw = _gateway(slow_emulator, redis_url, f"{redis_prefix}mcp0:", 0.0)
    yield gw
    gw.server.stop()


@asynccontextmanager
async def mcp_session(gateway: Gateway, key: str | None) -> AsyncIterator[ClientSession]:
    """The official MCP client over streamable HTTP, sending ``key`` as a bearer."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{gateway.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session
