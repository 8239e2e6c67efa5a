"""Open mode on loopback with no keys, ended by the first key without a restart."""

from __future__ import annotations

import time

import httpx

from tests.gateway.conftest import start_gateway, unique
from tests.support.servers import ServerThread


def test_first_key_ends_open_mode(emulator: ServerThread, redis_url: str, redis_prefix: str) -> None:
    gw = start_gateway(f"{emulator.url}/v2", redis_url, f"{redis_prefix}open-{unique()}:", key_cache_s=1.0)
    try:
        ready = httpx.get(f"{gw.url}/readyz").json()
        assert ready["open_mode"] is True
        assert httpx.get(f"{gw.url}/v1/models").status_code == 200
        issued = gw.issue_key("first")
        deadline = time.monotonic() + 5
        while httpx.get(f"{gw.url}/v1/models").status_code == 200:
            assert time.monotonic() < deadline, "open mode did not end"
            time.sleep(0.2)
        assert httpx.get(f"{gw.url}/v1/models").status_code == 401
        authed = httpx.get(f"{gw.url}/v1/models", headers={"authorization": f"Bearer {issued.key}"})
        assert authed.status_code == 200
        assert httpx.get(f"{gw.url}/readyz").json()["open_mode"] is False
    finally:
        gw.server.stop()


def test_revoked_key_stops_working_after_the_cache(emulator: ServerThread, redis_url: str, redis_prefix: str) -> None:
    import asyncio

    from app.keys import KeyStore
    from app.store import Keys, create_redis

    prefix = f"{redis_prefix}revoke-{unique()}:"
    gw = start_gateway(f"{emulator.url}/v2", redis_url, prefix, key_cache_s=1.0)
    try:
        keep = gw.issue_key("keep")
        doomed = gw.issue_key("doomed")
        headers = {"authorization": f"Bearer {doomed.key}"}
        assert httpx.get(f"{gw.url}/v1/models", headers=headers).status_code == 200

        async def revoke() -> bool:
            redis = create_redis(redis_url)
            try:
                return await KeyStore(redis, Keys(prefix)).revoke(doomed.id)
            finally:
                await redis.aclose()

        assert asyncio.run(revoke())
        time.sleep(1.2)
        assert httpx.get(f"{gw.url}/v1/models", headers=headers).status_code == 401
        assert httpx.get(f"{gw.url}/v1/models", headers={"authorization": f"Bearer {keep.key}"}).status_code == 200
    finally:
        gw.server.stop()
