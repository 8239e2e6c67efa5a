"""The built-in Pusher server, spoken to over a plain WebSocket client (``websockets``):
connection, errors, subscriptions, and job events on every replica exactly once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.gateway.conftest import Gateway
from tests.realtime.conftest import ws_url
from tests.realtime.workers import PREVIEW


async def _recv(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return frame


async def _established(ws: ClientConnection) -> str:
    frame = await _recv(ws)
    assert frame["event"] == "pusher:connection_established"
    data = json.loads(frame["data"])
    assert data["activity_timeout"] == 30
    socket_id: str = data["socket_id"]
    return socket_id


async def _auth(gateway: Gateway, key: str, socket_id: str, channel: str) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{gateway.url}/broadcasting/auth",
            data={"socket_id": socket_id, "channel_name": channel},
            headers={"authorization": f"Bearer {key}"},
        )
    assert response.status_code == 200, response.text
    auth: str = response.json()["auth"]
    return auth


async def _subscribe(ws: ClientConnection, channel: str, auth: str) -> dict[str, Any]:
    await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}}))
    return await _recv(ws)


async def _subscribed(gateway: Gateway, key: str, key_id: str) -> ClientConnection:
    ws = await connect(ws_url(gateway))
    socket_id = await _established(ws)
    channel = f"private-client.{key_id}"
    reply = await _subscribe(ws, channel, await _auth(gateway, key, socket_id, channel))
    assert reply == {"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"}
    return ws


def _start_job(gateway: Gateway, key: str, prompt: str) -> str:
    response = httpx.post(
        f"{gateway.url}/v1/images/generations",
        json={"prompt": prompt},
        headers={"authorization": f"Bearer {key}", "prefer": "respond-async"},
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


async def _events_until_final(ws: ClientConnection, job_id: str) -> list[dict[str, Any]]:
    events = []
    while True:
        frame = await _recv(ws, timeout=20)
        assert frame["event"] == "request.status.updated"
        event = json.loads(frame["data"])
        if event["request_id"] != job_id:
            continue
        events.append(event)
        if event["status"] in ("done", "error"):
            return events


def test_connection_established_then_ping_pong(gateway: Gateway) -> None:
    async def scenario() -> None:
        async with connect(ws_url(gateway)) as ws:
            socket_id = await _established(ws)
            left, _, right = socket_id.partition(".")
            assert left.isdigit() and right.isdigit()
            await ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
            assert await _recv(ws) == {"event": "pusher:pong", "data": "{}"}

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("key", "query", "code"),
    [
        ("wrong-key", "protocol=7", 4001),
        ("test-app-key", "protocol=8", 4007),
        ("test-app-key", "client=js", 4008),
        ("test-app-key", "protocol=seven", 4006),
    ],
)
def test_connection_errors_use_the_protocols_codes(gateway: Gateway, key: str, query: str, code: int) -> None:
    async def scenario() -> None:
        async with connect(ws_url(gateway, key, query)) as ws:
            frame = await _recv(ws)
            assert frame["event"] == "pusher:error"
            assert frame["data"]["code"] == code and frame["data"]["message"]
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == code

    asyncio.run(scenario())


def test_forged_and_foreign_auth_are_refused(gateway: Gateway) -> None:
    mine, theirs = gateway.issue_key("rt-mine"), gateway.issue_key("rt-theirs")

    async def scenario() -> None:
        async with connect(ws_url(gateway)) as ws:
            socket_id = await _established(ws)
            channel = f"private-client.{mine.id}"
            forged = f"test-app-key:{'0' * 64}"
            # Their auth for their own channel does not open mine, and they get none for mine.
            foreign = await _auth(gateway, theirs.key, socket_id, f"private-client.{theirs.id}")
            for auth in (forged, foreign, "", "test-app-key"):
                reply = await _subscribe(ws, channel, auth)
                assert reply["event"] == "pusher:subscription_error" and reply["channel"] == channel
                assert json.loads(reply["data"])["status"] == 401
            other = await _subscribe(ws, "presence-room", forged)
            assert json.loads(other["data"])["status"] == 404
            # The socket stays usable after refusals.
            reply = await _subscribe(ws, channel, await _auth(gateway, mine.key, socket_id, channel))
            assert reply["event"] == "pusher_internal:subscription_succeeded"

    asyncio.run(scenario())


def test_a_job_reaches_its_owner_on_every_replica_exactly_once(replicas: tuple[Gateway, Gateway]) -> None:
    first, second = replicas
    owner, stranger = first.issue_key("rt-owner"), first.issue_key("rt-stranger")

    async def scenario() -> None:
        sockets = [
            await _subscribed(first, owner.key, owner.id),
            await _subscribed(first, owner.key, owner.id),
            await _subscribed(second, owner.key, owner.id),
        ]
        bystander = await _subscribed(second, stranger.key, stranger.id)
        job_id = await asyncio.to_thread(_start_job, second, owner.key, "a lighthouse")
        sequences = await asyncio.gather(*(_events_until_final(ws, job_id) for ws in sockets))
        for events in sequences:
            assert [e["status"] for e in events] == ["processing", "in_progress", "done"]
            processing, in_progress, done = events
            assert processing == {
                "request_id": job_id, "status": "processing", "preview": None, "result_url": None, "progress": "0.00"
            }
            assert in_progress["progress"] == "45.50" and in_progress["preview"] == PREVIEW
            assert done["progress"] == "100.00" and done["preview"] is None
            async with httpx.AsyncClient() as client:
                result = await client.get(done["result_url"])
            assert result.status_code == 200 and result.json()["status"] == "COMPLETED"
        # Nothing more for anyone: each event came once per socket, and none to another key.
        for ws in [*sockets, bystander]:
            with pytest.raises(TimeoutError):
                await _recv(ws, timeout=0.5)
            await ws.close()

    asyncio.run(scenario())


def test_a_failed_job_sends_error_with_its_message(gateway: Gateway) -> None:
    owner = gateway.issue_key("rt-failing")

    async def scenario() -> None:
        ws = await _subscribed(gateway, owner.key, owner.id)
        job_id = await asyncio.to_thread(_start_job, gateway, owner.key, "fail")
        events = await _events_until_final(ws, job_id)
        assert [e["status"] for e in events[:-1]] in ([], ["processing"], ["processing", "in_progress"])
        final = events[-1]
        assert final["status"] == "error" and "refused" in final["error"] and final["result_url"] is None
        await ws.close()

    asyncio.run(scenario())


def test_unsubscribe_stops_events_and_bad_messages_get_errors(gateway: Gateway) -> None:
    owner = gateway.issue_key("rt-unsub")

    async def scenario() -> None:
        ws = await _subscribed(gateway, owner.key, owner.id)
        await ws.send(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": f"private-client.{owner.id}"}}))
        await ws.send("not json")
        assert (await _recv(ws))["event"] == "pusher:error"
        await ws.send(json.dumps({"event": "client-typing", "channel": "private-client.x", "data": {}}))
        assert (await _recv(ws))["event"] == "pusher:error"
        await asyncio.to_thread(_start_job, gateway, owner.key, "fail")
        with pytest.raises(TimeoutError):
            await _recv(ws, timeout=1.5)
        await ws.close()

    asyncio.run(scenario())


def test_each_new_progress_value_is_one_event_however_often_the_job_is_read(gateway: Gateway) -> None:
    owner = gateway.issue_key("rt-progress")

    async def scenario() -> None:
        ws = await _subscribed(gateway, owner.key, owner.id)
        job_id = await asyncio.to_thread(_start_job, gateway, owner.key, "steps")

        async def keep_reading() -> None:  # every client read observes the job too
            async with httpx.AsyncClient(headers={"authorization": f"Bearer {owner.key}"}) as client:
                while True:
                    await client.get(f"{gateway.url}/v1/jobs/images/{job_id}")
                    await asyncio.sleep(0.2)

        reader = asyncio.create_task(keep_reading())
        try:
            events = await _events_until_final(ws, job_id)
        finally:
            reader.cancel()
        assert [(e["status"], e["progress"]) for e in events] == [
            ("processing", "0.00"), ("in_progress", "45.50"), ("in_progress", "80.00"), ("done", "100.00")
        ]
        with pytest.raises(TimeoutError):
            await _recv(ws, timeout=0.5)
        await ws.close()

    asyncio.run(scenario())
