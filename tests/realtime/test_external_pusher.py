"""DRYAPI_PUSHER_URL: events go through an external Pusher server's HTTP API (official library).

The external server is a small stand-in for Pusher's HTTP API on a real port that checks each
request's signature the way Pusher does; the built-in server is off.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, post
from litestar.exceptions import NotAuthorizedException
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.gateway.conftest import Gateway
from tests.realtime.conftest import APP_KEY, APP_SECRET, realtime_gateway, ws_url
from tests.support.servers import ServerThread

APP_ID = "4242"


def fake_pusher(received: list[dict[str, Any]]) -> Litestar:
    @post("/apps/{app_id:str}/events", status_code=200)
    async def events(request: Request[Any, Any, Any], app_id: str) -> dict[str, Any]:
        body = await request.body()
        query = dict(request.query_params)
        signature = query.pop("auth_signature", "")
        signed = "&".join(f"{name}={query[name]}" for name in sorted(query))
        expected = hmac.new(APP_SECRET.encode(), f"POST\n{request.url.path}\n{signed}".encode(), hashlib.sha256)
        if (
            app_id != APP_ID
            or query.get("auth_key") != APP_KEY
            or query.get("body_md5") != hashlib.md5(body).hexdigest()
            or not hmac.compare_digest(expected.hexdigest(), signature)
        ):
            raise NotAuthorizedException("bad signature")
        received.append(json.loads(body))
        return {}

    return Litestar([events])


@pytest.fixture
def external(
    emulator: ServerThread, redis_url: str, redis_prefix: str
) -> Iterator[tuple[Gateway, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    server = ServerThread(fake_pusher(received)).start()
    prefix = f"{redis_prefix}ext{time.time_ns()}:"  # its own replica set, cleaned up with the session's
    gateway = realtime_gateway(emulator, redis_url, prefix, pusher_url=server.url, pusher_app_id=APP_ID)
    yield gateway, received
    gateway.server.stop()
    server.stop()


def test_events_are_published_through_the_external_server(external: tuple[Gateway, list[dict[str, Any]]]) -> None:
    gateway, received = external
    owner = gateway.issue_key("ext-owner")
    response = httpx.post(
        f"{gateway.url}/v1/images/generations",
        json={"prompt": "an external lighthouse"},
        headers={"authorization": f"Bearer {owner.key}", "prefer": "respond-async"},
    )
    job_id = response.json()["id"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any('"done"' in event["data"] for event in received):
        time.sleep(0.1)
    assert {event["name"] for event in received} == {"request.status.updated"}
    assert {tuple(event["channels"]) for event in received} == {(f"private-client.{owner.id}",)}
    payloads = [json.loads(event["data"]) for event in received]
    assert [p["status"] for p in payloads] == ["processing", "in_progress", "done"]
    assert {p["request_id"] for p in payloads} == {job_id}

    # /broadcasting/auth signs for the external server; the built-in one is not served.
    auth = httpx.post(
        f"{gateway.url}/broadcasting/auth",
        data={"socket_id": "1.2", "channel_name": f"private-client.{owner.id}"},
        headers={"authorization": f"Bearer {owner.key}"},
    )
    digest = hmac.new(APP_SECRET.encode(), f"1.2:private-client.{owner.id}".encode(), hashlib.sha256).hexdigest()
    assert auth.json() == {"auth": f"{APP_KEY}:{digest}"}
    with pytest.raises(InvalidStatus):
        connect(ws_url(gateway)).close()
