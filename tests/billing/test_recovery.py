"""A gateway that dies between a job's end and its settlement loses no money: whoever finalises
the job next (another replica's callback, the sweeper, a client's read) settles it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec

from app.jobs.records import JobRecord
from app.store import Keys, create_redis
from tests.billing.conftest import INITIAL_USD, Client
from tests.billing.test_charging import IMAGE, _ledger_call, entries, settled, submit, wait

SLOW_VIDEO = {"model": "Ltxv_13B_0_9_8_Distilled_FP8", "prompt": "slow:1", "width": 256, "height": 256,
              "frames": 48, "fps": 24, "steps": 1}


def _redis(client: Client, action: Any) -> Any:
    async def run() -> Any:
        redis = create_redis(client.gateway.settings.redis_url)
        try:
            return await action(redis, Keys(client.gateway.settings.redis_prefix))
        finally:
            await redis.aclose()

    return asyncio.run(run())


def test_a_finaliser_that_died_before_settling_is_covered(client: Client) -> None:
    request_id = submit(client, "txt2video", json=SLOW_VIDEO)
    # Another replica claimed the job's finalisation and died: no result will ever be stored by it.
    _redis(client, lambda redis, keys: redis.set(keys.job_final_claim(request_id), b"1", ex=300))
    assert wait(client, request_id, timeout_s=30)["status"] == "done"
    hold, settle = settled(client, request_id, timeout_s=15)
    assert settle.kind == "settle" and settle.amount == hold.amount == 1737
    assert client.balance() == round(INITIAL_USD - 0.001737, 6)


def test_a_stored_result_whose_hold_was_never_settled_settles_on_the_next_read(client: Client) -> None:
    request_id = submit(client, "txt2img", json=IMAGE)
    assert wait(client, request_id)["status"] == "done"
    settled(client, request_id)
    # The state a crash after storing the result but before settling leaves: an open hold that the
    # job's record names.
    _ledger_call(client.gateway, lambda ledger: ledger.hold(client.key_id, "hold_unsettled", 1360, task="txt2img",
                                                            model="Flux1schnell", quantities={}))

    async def point_record_at_the_hold(redis: Any, keys: Keys) -> JobRecord:
        record = msgspec.json.decode(await redis.get(keys.job(request_id)), type=JobRecord)
        record.options["billing"] = record.options["billing"] | {"hold": "hold_unsettled"}
        await redis.set(keys.job(request_id), msgspec.json.encode(record), keepttl=True)
        return record

    record = _redis(client, point_record_at_the_hold)
    # RunPod delivers its callback again (it retries): the finished job is observed once more.
    callback = client.gateway.services.callback_url(record.nonce)
    again = httpx.post(callback, json={"id": request_id, "status": "COMPLETED", "output": {"images": []}})
    assert again.status_code == 200, again.text
    last = entries(client)[-1]
    assert (last.kind, last.hold, last.job_id, last.amount) == ("settle", "hold_unsettled", request_id, 1360)
    assert _ledger_call(client.gateway, lambda ledger: ledger.held(client.key_id, "hold_unsettled")) is None
