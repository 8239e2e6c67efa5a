"""Several workers on one Redis outbox: each attempt made once, nothing lost when a worker dies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.support.servers import ServerThread
from tests.webhooks.conftest import OutboxFactory, eventually, running
from tests.webhooks.receiver import Receiver

DATA = {"job_request_id": "j", "status": "done", "previous_status": "processing", "job_type": "chat"}
ROOT = Path(__file__).resolve().parents[2]


async def test_two_replicas_make_each_attempt_once(
    make_outbox: OutboxFactory, receiver: tuple[Receiver, ServerThread], token: str
) -> None:
    app, server = receiver
    first = make_outbox(schedule=(0, 0.1))
    second = make_outbox(schedule=(0, 0.1))
    ids: list[str] = []
    async with running(first, second):
        for i in range(50):
            mode = "fail1" if i % 2 else "sleep150"  # retries and slow in-flight attempts
            outbox = first if i % 2 else second
            ids.append(
                await outbox.enqueue(
                    key_id="key_rep", url=f"{server.url}/{token}/{mode}", event="job.completed", data=DATA
                )
            )
        await eventually(lambda: first.stats["delivered"] + second.stats["delivered"] == 50, timeout=20)
        await asyncio.sleep(0.3)
    arrivals = app.at(token)
    per_id = Counter(a.delivery_id for a in arrivals)
    successes = Counter(a.delivery_id for a in arrivals if a.status == 200)
    assert set(per_id) == set(ids)
    assert all(successes[i] == 1 for i in ids)
    assert all(per_id[i] == (2 if n % 2 else 1) for n, i in enumerate(ids))
    assert first.stats["failed_attempt"] + second.stats["failed_attempt"] == 25
    assert first.stats["delivered"] > 0 and second.stats["delivered"] > 0  # both replicas worked
    assert await first.status("key_rep") == {"paused": False, "consecutive_failures": 0, "pending": 0}


async def test_graceful_stop_finishes_the_attempt_in_flight(
    make_outbox: OutboxFactory, receiver: tuple[Receiver, ServerThread], token: str
) -> None:
    app, server = receiver
    outbox = make_outbox()
    async with running(outbox):
        delivery_id = await outbox.enqueue(
            key_id="key_stop", url=f"{server.url}/{token}/sleep400", event="job.completed", data=DATA
        )
        await eventually(lambda: len(app.at(token)) == 1)
    # run() returned only after the attempt was recorded: nothing is left for another worker.
    record = await outbox.delivery(delivery_id)
    assert record is not None and record["state"] == "delivered"
    assert await outbox.status("key_stop") == {"paused": False, "consecutive_failures": 0, "pending": 0}


async def test_cancelled_worker_gives_its_claims_back_at_once(
    make_outbox: OutboxFactory, receiver: tuple[Receiver, ServerThread], token: str
) -> None:
    app, server = receiver
    first = make_outbox()  # default lease: timeout_s + 30 s
    task = asyncio.create_task(first.run(asyncio.Event()))
    delivery_id = await first.enqueue(key_id="key_cancel", url=f"{server.url}/{token}/hang1500", event="e", data=DATA)
    await eventually(lambda: len(app.at(token)) == 1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    second = make_outbox()
    async with running(second):
        await eventually(lambda: second.stats["delivered"] == 1, timeout=5)  # well before the lease would expire
    assert [a.delivery_id for a in app.at(token)] == [delivery_id, delivery_id]
    assert first.stats["delivered"] == 0


@pytest.mark.process
async def test_sigkilled_worker_deliveries_are_finished_by_another_exactly_once(
    make_outbox: OutboxFactory,
    receiver: tuple[Receiver, ServerThread],
    token: str,
    redis_url: str,
    webhook_prefix: str,
    tmp_path: Path,
) -> None:
    app, server = receiver
    config = {
        "redis_url": redis_url,
        "prefix": webhook_prefix,
        "schedule": [0, 1.0, 0.2],
        "timeout_s": 2.0,
        "lease_s": 2.5,
    }
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.webhooks.worker_main", json.dumps(config)],
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    try:
        await eventually(lambda: b"worker ready" in log_path.read_bytes(), timeout=20)
        producer = make_outbox(schedule=config["schedule"], lease_s=2.5)  # enqueues only, until the kill
        waiting: list[str] = []
        in_flight: list[str] = []
        for i in range(20):
            # Even: the first attempt fails fast, so the delivery waits for its retry.
            # Odd: the first attempt hangs at the receiver, so it is in flight when the worker dies.
            mode = "fail1" if i % 2 == 0 else "hang1500"
            url = f"{server.url}/{token}/{mode}"
            delivery_id = await producer.enqueue(key_id="key_kill", url=url, event="job.completed", data=DATA)
            (waiting if i % 2 == 0 else in_flight).append(delivery_id)

        async def first_attempts_seen() -> bool:
            records = [await producer.delivery(i) for i in waiting]
            return len(app.at(token)) == 20 and all(r is not None and r["attempts"] == 1 for r in records)

        await eventually(first_attempts_seen)
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
        assert await producer.status("key_kill") == {"paused": False, "consecutive_failures": 0, "pending": 20}

        replacement = make_outbox(schedule=config["schedule"], lease_s=2.5)
        async with running(replacement):
            await eventually(lambda: replacement.stats["delivered"] == 20, timeout=20)
            await asyncio.sleep(0.5)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    arrivals = app.at(token)
    successes = Counter(a.delivery_id for a in arrivals if a.status == 200)
    assert set(successes) == set(waiting + in_flight)
    assert set(successes.values()) == {1}
    assert Counter(a.delivery_id for a in arrivals) == dict.fromkeys(waiting + in_flight, 2)
    assert await replacement.status("key_kill") == {"paused": False, "consecutive_failures": 0, "pending": 0}
    for delivery_id in in_flight:  # the killed attempt was never recorded, so it was made again
        record = await replacement.delivery(delivery_id)
        assert record is not None and (record["state"], record["attempts"]) == ("delivered", 1)
