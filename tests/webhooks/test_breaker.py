"""The seed's circuit breaker: consecutive failed deliveries per key pause that key until resumed."""

from __future__ import annotations

import asyncio

from tests.support.servers import ServerThread
from tests.webhooks.conftest import OutboxFactory, eventually, running
from tests.webhooks.receiver import Receiver

DATA = {"job_request_id": "j1", "status": "error", "previous_status": "processing", "job_type": "chat"}


async def test_breaker_trips_holds_and_resume_releases(
    make_outbox: OutboxFactory, receiver: tuple[Receiver, ServerThread], token: str
) -> None:
    app, server = receiver
    seen: list[str] = []
    outbox = make_outbox(schedule=(0,), breaker_threshold=3, on_outcome=seen.append)
    failing, ok, other = (f"{server.url}/{token}/{mode}" for mode in ("status500", "ok", "other/ok"))
    async with running(outbox):
        for _ in range(3):
            await outbox.enqueue(key_id="key_br", url=failing, event="job.failed", data=DATA)
        await eventually(lambda: outbox.stats["dead"] == 3)
        assert await outbox.status("key_br") == {"paused": True, "consecutive_failures": 3, "pending": 0}
        assert outbox.stats["paused"] == 1

        held = [await outbox.enqueue(key_id="key_br", url=ok, event="job.completed", data=DATA) for _ in range(2)]
        unaffected = await outbox.enqueue(key_id="key_other", url=other, event="job.completed", data=DATA)
        await eventually(lambda: any(a.delivery_id == unaffected for a in app.at(token)))
        await eventually(lambda: outbox.stats["held"] == 2)
        await asyncio.sleep(0.3)
        assert not [a for a in app.at(token) if a.path.endswith(f"/{token}/ok")]  # held, not attempted
        assert await outbox.status("key_br") == {"paused": True, "consecutive_failures": 3, "pending": 2}
        for delivery_id in held:
            record = await outbox.delivery(delivery_id)
            assert record is not None and (record["state"], record["attempts"]) == ("held", 0)

        assert await outbox.resume("key_br") is True
        await eventually(lambda: len([a for a in app.at(token) if a.path.endswith(f"/{token}/ok")]) == 2)
        await eventually(lambda: outbox.stats["delivered"] == 3)
    assert {a.delivery_id for a in app.at(token) if a.path.endswith(f"/{token}/ok")} == set(held)
    assert await outbox.status("key_br") == {"paused": False, "consecutive_failures": 0, "pending": 0}
    assert await outbox.resume("key_br") is False
    assert seen.count("paused") == 1 and seen.count("held") == 2 and seen.count("dead") == 3


async def test_breaker_counts_deliveries_not_attempts_and_success_resets(
    make_outbox: OutboxFactory, receiver: tuple[Receiver, ServerThread], token: str
) -> None:
    _app, server = receiver
    outbox = make_outbox(schedule=(0, 0.05, 0.05), breaker_threshold=3)
    async with running(outbox):
        for _ in range(2):
            await outbox.enqueue(key_id="key_cnt", url=f"{server.url}/{token}/status503", event="job.failed", data=DATA)
        await eventually(lambda: outbox.stats["dead"] == 2)
        # Six failed attempts, two failed deliveries: not tripped.
        assert outbox.stats["failed_attempt"] == 6
        assert await outbox.status("key_cnt") == {"paused": False, "consecutive_failures": 2, "pending": 0}
        await outbox.enqueue(key_id="key_cnt", url=f"{server.url}/{token}/fail1", event="job.completed", data=DATA)
        await eventually(lambda: outbox.stats["delivered"] == 1)
    assert await outbox.status("key_cnt") == {"paused": False, "consecutive_failures": 0, "pending": 0}
