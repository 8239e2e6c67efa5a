"""One outbox against a real local receiver: headers, signatures, retries, failures."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import time

import pytest

from app.store import Keys, create_redis
from app.webhooks import WebhookOutbox, verify
from tests.support.servers import ServerThread
from tests.webhooks.conftest import SECRETS, OutboxFactory, eventually, running, secret_from
from tests.webhooks.receiver import Receiver

DATA = {
    "job_request_id": "123e4567-e89b-12d3-a456-426614174000",
    "status": "done",
    "previous_status": "processing",
    "job_type": "chat",
    "completed_at": "2024-01-15T10:30:45.000Z",
    "result_url": "https://gw.example/v1/results/123?exp=1&sig=abc",
    "processing_time_ms": 45000,
}


def seed_check(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The seed's verification recipe, written independently of app.webhooks."""
    timestamp = headers["x-dryapi-timestamp"]
    if abs(int(time.time()) - int(timestamp)) > 300:
        return False
    expected = (
        "sha256=" + hmac.new(secret.encode(), f"{timestamp}.{body.decode()}".encode(), hashlib.sha256).hexdigest()
    )
    return hmac.compare_digest(headers["x-dryapi-signature"], expected)


async def test_delivered_once_with_seed_headers_and_signature(
    make_outbox: OutboxFactory, receiver: tuple[Receiver, ServerThread], token: str
) -> None:
    app, server = receiver
    outbox = make_outbox()
    async with running(outbox):
        delivery_id = await outbox.enqueue(
            key_id="key_a", url=f"{server.url}/{token}/ok", event="job.completed", data=DATA
        )
        await eventually(lambda: len(app.at(token)) == 1)
        await asyncio.sleep(0.4)  # nothing more arrives
    [arrival] = app.at(token)
    headers = arrival.headers
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "DryAPI-Webhook/1.0"
    assert headers["x-dryapi-event"] == "job.completed"
    assert headers["x-dryapi-delivery-id"] == delivery_id
    assert abs(int(headers["x-dryapi-timestamp"]) - time.time()) < 5
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", headers["x-dryapi-signature"])
    assert seed_check(SECRETS["key_a"], headers, arrival.body)
    assert verify(SECRETS["key_a"], headers["x-dryapi-timestamp"], arrival.body, headers["x-dryapi-signature"])
    payload = json.loads(arrival.body)
    assert payload["event"] == "job.completed"
    assert payload["delivery_id"] == delivery_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", payload["timestamp"])
    assert payload["data"] == DATA
    assert await outbox.status("key_a") == {"paused": False, "consecutive_failures": 0, "pending": 0}
    record = await outbox.delivery(delivery_id)
    assert record is not None
    assert (record["state"], record["attempts"], record["last_status"]) == ("delivered", 1, 200)
    assert outbox.stats["delivered"] == 1
    assert outbox.stats["failed_attempt"] == 0


async def test_each_key_signs_with_its_own_secret(
    make_outbox: OutboxFactory, receiver: tuple[Receiver, ServerThread], token: str
) -> None:
    app, server = receiver
    outbox = make_outbox()
    url = f"{server.url}/{token}/ok"
    async with running(outbox):
        id_a = await outbox.enqueue(key_id="key_a", url=url, event="job.completed", data=DATA)
        id_b = await outbox.enqueue(key_id="key_b", url=url, event="job.completed", data=DATA)
        await eventually(lambda: len(app.at(token)) == 2)
    by_id = {a.delivery_id: a for a in app.at(token)}
    a, b = by_id[id_a], by_id[id_b]
    assert a.headers["x-dryapi-signature"] != b.headers["x-dryapi-signature"]
    assert seed_check(SECRETS["key_a"], a.headers, a.body)
    assert not seed_check(SECRETS["key_b"], a.headers, a.body)
    assert seed_check(SECRETS["key_b"], b.headers, b.body)
    assert not seed_check(SECRETS["key_a"], b.headers, b.body)


async def test_failing_twice_then_succeeding_takes_three_identical_attempts(
    make_outbox: OutboxFactory, receiver: tuple[Receiver, ServerThread], token: str
) -> None:
    app, server = receiver
    outbox = make_outbox(schedule=(0, 0.2, 0.2, 0.2))
    async with running(outbox):
        delivery_id = await outbox.enqueue(
            key_id="key_a", url=f"{server.url}/{token}/fail2", event="job.failed", data=DATA
        )
        await eventually(lambda: len(app.at(token)) == 3)
        await asyncio.sleep(0.5)
    arrivals = app.at(token)
    assert [a.status for a in arrivals] == [500, 500, 200]
    assert {a.delivery_id for a in arrivals} == {delivery_id}
    assert len({a.body for a in arrivals}) == 1
    assert all(seed_check(SECRETS["key_a"], a.headers, a.body) for a in arrivals)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(arrivals)]
    assert all(gap >= 0.18 for gap in gaps), gaps
    record = await outbox.delivery(delivery_id)
    assert record is not None and (record["state"], record["attempts"]) == ("delivered", 3)
    assert (outbox.stats["failed_attempt"], outbox.stats["delivered"], outbox.stats["dead"]) == (2, 1, 0)


async def test_secret_is_read_at_send_time_so_rotation_applies(
    make_outbox: OutboxFactory, receiver: tuple[Receiver, ServerThread], token: str
) -> None:
    app, server = receiver
    current = {"key_r": "old-secret"}

    async def secret_for(key_id: str) -> str | None:
        return current.get(key_id)

    outbox = make_outbox(secret_for=secret_for, schedule=(0, 0.3))
    async with running(outbox):
        await outbox.enqueue(key_id="key_r", url=f"{server.url}/{token}/fail1", event="job.completed", data=DATA)
        await eventually(lambda: len(app.at(token)) == 1)
        current["key_r"] = "new-secret"
        await eventually(lambda: len(app.at(token)) == 2)
    first, second = app.at(token)
    assert seed_check("old-secret", first.headers, first.body)
    assert seed_check("new-secret", second.headers, second.body)
    assert not seed_check("old-secret", second.headers, second.body)


async def test_redirect_is_a_failure_and_never_followed(
    make_outbox: OutboxFactory, receiver: tuple[Receiver, ServerThread], token: str
) -> None:
    app, server = receiver
    outbox = make_outbox(schedule=(0,))
    async with running(outbox):
        delivery_id = await outbox.enqueue(
            key_id="key_a", url=f"{server.url}/{token}/redirect", event="job.completed", data=DATA
        )
        await eventually(lambda: outbox.stats["dead"] == 1)
    assert [a.path.rsplit("/", 1)[-1] for a in app.at(token)] == ["redirect"]
    record = await outbox.delivery(delivery_id)
    assert record is not None
    assert (record["state"], record["last_status"], record["last_error"]) == ("dead", 302, "redirect_302")


async def test_timeout_is_a_failure(
    make_outbox: OutboxFactory, receiver: tuple[Receiver, ServerThread], token: str
) -> None:
    app, server = receiver
    outbox = make_outbox(schedule=(0, 0.1), timeout_s=0.3)
    async with running(outbox):
        started = time.monotonic()
        delivery_id = await outbox.enqueue(
            key_id="key_a", url=f"{server.url}/{token}/sleep1500", event="job.completed", data=DATA
        )
        await eventually(lambda: outbox.stats["dead"] == 1)
        elapsed = time.monotonic() - started
    assert len(app.at(token)) == 2
    assert elapsed < 1.5  # both attempts gave up at the timeout, not when the receiver answered
    record = await outbox.delivery(delivery_id)
    assert record is not None
    assert (record["state"], record["attempts"], record["last_error"]) == ("dead", 2, "timeout")
    assert outbox.stats["failed_attempt"] == 2


async def test_dead_after_the_schedule_is_exhausted(
    make_outbox: OutboxFactory, receiver: tuple[Receiver, ServerThread], token: str, redis_url: str, webhook_prefix: str
) -> None:
    app, server = receiver
    outbox = make_outbox(schedule=(0, 0.1, 0.1), dead_ttl_s=600)
    async with running(outbox):
        delivery_id = await outbox.enqueue(
            key_id="key_dead", url=f"{server.url}/{token}/status500", event="job.failed", data=DATA
        )
        await eventually(lambda: outbox.stats["dead"] == 1)
        await asyncio.sleep(0.4)
    assert [a.status for a in app.at(token)] == [500, 500, 500]
    record = await outbox.delivery(delivery_id)
    assert record is not None
    assert (record["state"], record["attempts"], record["last_status"]) == ("dead", 3, 500)
    assert outbox.stats == {**outbox.stats, "failed_attempt": 3, "dead": 1, "delivered": 0}
    # Kept whole for inspection, under a TTL; one failed delivery counts once for the breaker.
    import redis

    client = redis.Redis.from_url(redis_url)
    key = Keys(webhook_prefix).webhook_delivery(delivery_id)
    assert client.hget(key, "body")
    assert 0 < client.ttl(key) <= 600
    client.close()
    assert await outbox.status("key_dead") == {"paused": False, "consecutive_failures": 1, "pending": 0}


async def test_missing_secret_fails_permanently_without_sending(
    make_outbox: OutboxFactory, receiver: tuple[Receiver, ServerThread], token: str
) -> None:
    app, server = receiver
    outbox = make_outbox()
    async with running(outbox):
        delivery_id = await outbox.enqueue(
            key_id="missing_key", url=f"{server.url}/{token}/ok", event="job.completed", data=DATA
        )
        await eventually(lambda: outbox.stats["dead"] == 1)
    assert app.at(token) == []
    record = await outbox.delivery(delivery_id)
    assert record is not None
    assert (record["state"], record["attempts"], record["last_error"]) == ("dead", 0, "no_secret")
    assert outbox.stats["failed_attempt"] == 0


async def test_memory_backend_runs_the_same_outbox(receiver: tuple[Receiver, ServerThread], token: str) -> None:
    """``REDIS_URL=memory://`` (fakeredis) runs the Lua scripts too, given ``fakeredis[lua]`` (lupa)."""
    pytest.importorskip("lupa")
    app, server = receiver
    client = create_redis("memory://")
    outbox = WebhookOutbox(
        client,
        Keys("mem:"),
        secret_for=secret_from,
        schedule=(0, 0.1),
        allowlist=frozenset({"127.0.0.1"}),
        poll_interval_s=0.05,
    )
    async with running(outbox):
        delivery_id = await outbox.enqueue(key_id="key_a", url=f"{server.url}/{token}/fail1", event="e", data=DATA)
        await eventually(lambda: outbox.stats["delivered"] == 1)
    assert [a.status for a in app.at(token)] == [500, 200]
    assert {a.delivery_id for a in app.at(token)} == {delivery_id}
    assert await outbox.status("key_a") == {"paused": False, "consecutive_failures": 0, "pending": 0}
    await client.aclose()
