"""A client that hangs up stops the GPU work it asked for."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from app.jobs.records import JobRecord
from app.store import create_redis
from tests.gateway.conftest import Gateway
from tests.support.servers import ServerThread


def _records(gateway: Gateway, owner: str) -> list[JobRecord]:
    async def scan() -> list[JobRecord]:
        redis = create_redis(gateway.settings.redis_url)
        found = []
        try:
            async for key in redis.scan_iter(match=f"{gateway.settings.redis_prefix}job:*"):
                raw = await redis.get(key)
                if raw:
                    import msgspec

                    record = msgspec.json.decode(raw, type=JobRecord)
                    if record.owner == owner:
                        found.append(record)
        finally:
            await redis.aclose()
        return found

    return asyncio.run(scan())


def _emulator_status(emulator: ServerThread, endpoint: str, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{emulator.url}/v2/{endpoint}/status/{job_id}", headers={"authorization": "rp-test-key"})
    result: dict[str, Any] = response.json()
    return result


def test_disconnect_during_sync_job_cancels_it(gateway: Gateway, emulator: ServerThread) -> None:
    issued = gateway.issue_key("hangs-up")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{gateway.url}/v1/images/generations",
            json={"prompt": "slow 3"},
            headers={"authorization": f"Bearer {issued.key}"},
            timeout=httpx.Timeout(5, read=0.5),
        )
    deadline = time.monotonic() + 8
    while True:
        records = _records(gateway, issued.id)
        if records and _emulator_status(emulator, "img-ep", records[0].id)["status"] == "CANCELLED":
            break
        assert time.monotonic() < deadline, "the job was not cancelled"
        time.sleep(0.1)


def test_disconnect_during_stream_releases_the_worker(gateway: Gateway, emulator: ServerThread, api_key: str) -> None:
    def busy() -> int:
        health = httpx.get(f"{emulator.url}/v2/chat-ep/health", headers={"authorization": "rp-test-key"}).json()
        count: int = health["jobs"]["inProgress"]
        return count

    baseline = busy()
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": "tiny-chat", "stream": True, "messages": [{"role": "user", "content": "slow 6"}]},
        headers={"authorization": f"Bearer {api_key}"},
        timeout=10,
    ) as response:
        assert response.status_code == 200
        deadline = time.monotonic() + 5
        while busy() <= baseline:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    # The client is gone; the emulator must see the passthrough closed and cancel the job.
    deadline = time.monotonic() + 4
    while busy() > baseline:
        assert time.monotonic() < deadline, "the streaming job kept running after the client left"
        time.sleep(0.1)
