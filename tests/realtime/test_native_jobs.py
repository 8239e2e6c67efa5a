"""Native task API jobs reach the owner's Pusher channel too; ``done`` carries the file link."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.gateway.conftest import RUNPOD_KEY, Gateway, start_gateway
from tests.native.conftest import ROUTING, native_emulator
from tests.realtime.conftest import APP_KEY, APP_SECRET
from tests.realtime.test_pusher_server import _events_until_final, _subscribed
from tests.support.servers import ServerThread

__all__ = ["native_emulator"]


@pytest.fixture(scope="module")
def native_gateway(native_emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    upstream = f"{native_emulator.url}/v2"
    routing = ROUTING.format(upstream=upstream, runpod_key=RUNPOD_KEY)
    gateway = start_gateway(
        upstream, redis_url, f"{redis_prefix}rtnative:", routing=routing, pusher_app_key=APP_KEY,
        pusher_app_secret=APP_SECRET,
    )
    yield gateway
    gateway.server.stop()


def test_a_native_job_sends_its_file_link_when_done(native_gateway: Gateway) -> None:
    owner = native_gateway.issue_key("rt-native")
    headers = {"authorization": f"Bearer {owner.key}", "accept": "application/json"}

    async def scenario() -> None:
        ws = await _subscribed(native_gateway, owner.key, owner.id)
        async with httpx.AsyncClient(headers=headers) as client:
            submitted = await client.post(
                f"{native_gateway.url}/api/v1/client/txt2img",
                json={"prompt": "a native fox", "model": "Flux1schnell", "width": 512, "height": 512, "seed": 1},
            )
            assert submitted.status_code == 200, submitted.text
            request_id = submitted.json()["data"]["request_id"]
            events = await _events_until_final(ws, request_id)
            status = (await client.get(f"{native_gateway.url}/api/v1/client/request-status/{request_id}")).json()
        assert events[-1]["status"] == "done"  # a queued job sends nothing (the seeds' "pending")
        assert [e["status"] for e in events[:-1]] in ([], ["processing"], ["processing", "in_progress"])
        assert events[-1]["result_url"] == status["data"]["result_url"]
        assert "/v1/files/" in events[-1]["result_url"]
        await ws.close()

    asyncio.run(scenario())
