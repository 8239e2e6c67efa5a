"""Native submits hold their quote, and each job settles exactly once when it ends: charged what it
measured when done, refunded in full when it fails, is cancelled or times out (real HTTP, a real
Redis, the emulator)."""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from app.billing.ledger import Ledger, LedgerEntry
from app.store import Keys, create_redis
from tests.billing.conftest import INITIAL_USD, Client, new_key
from tests.gateway.conftest import Gateway
from tests.gateway.workers import png
from tests.native.test_tasks import _wav

IMAGE = {"model": "Flux1schnell", "prompt": "a lighthouse", "width": 512, "height": 512, "steps": 4, "seed": 1}
IMAGE_MICRO = 1360


def _ledger_call(gateway: Gateway, action: Any) -> Any:
    async def run() -> Any:
        redis = create_redis(gateway.settings.redis_url)
        try:
            ledger = Ledger(redis, Keys(gateway.settings.redis_prefix), initial_micro=5_000_000, ttl_days=90)
            return await action(ledger)
        finally:
            await redis.aclose()

    return asyncio.run(run())


def entries(client: Client) -> list[LedgerEntry]:
    found: list[LedgerEntry] = _ledger_call(client.gateway, lambda ledger: ledger.entries(client.key_id))
    return found


def submit(client: Client, task: str, **kwargs: Any) -> str:
    response = client.http.post(f"{client.base}/{task}", **kwargs)
    assert response.status_code == 200, response.text
    request_id: str = response.json()["data"]["request_id"]
    return request_id


def wait(client: Client, request_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.http.get(f"{client.base}/request-status/{request_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        if data["status"] in ("done", "error") or time.monotonic() > deadline:
            return data
        time.sleep(0.1)


def settled(client: Client, request_id: str, timeout_s: float = 10.0) -> list[LedgerEntry]:
    """The key's ledger once ``request_id`` has settled."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = entries(client)
        if any(e.job_id == request_id and e.kind in ("settle", "refund") for e in found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def test_a_done_job_holds_its_quote_then_settles_it(client: Client) -> None:
    quoted = client.price("txt2img", json=IMAGE).json()["data"]["price"]
    request_id = submit(client, "txt2img", json=IMAGE)
    assert wait(client, request_id)["status"] == "done"
    hold, settle = settled(client, request_id)
    assert hold.kind == "hold" and hold.amount == IMAGE_MICRO == round(quoted * 1_000_000)
    assert hold.task == "txt2img" and hold.model == "Flux1schnell"
    assert settle.kind == "settle" and settle.amount == IMAGE_MICRO and settle.refunded == 0
    assert settle.job_id == request_id and settle.hold == hold.job_id
    assert client.balance() == round(INITIAL_USD - quoted, 6)
    # Reading the finished job again settles nothing twice.
    wait(client, request_id)
    assert len(entries(client)) == 2


def test_ocr_settles_on_the_characters_it_read(client: Client) -> None:
    files = {"image": ("page.png", png(512, 512, 1), "image/png")}
    request_id = submit(client, "img2txt", data={"model": "Nanonets_Ocr_S_F16"}, files=files)
    text = wait(client, request_id)["result"]
    hold, settle = settled(client, request_id)
    assert hold.amount == 4640  # 500 characters estimated for a quarter megapixel
    assert settle.amount == math.ceil(9.28 * len(text) - 1e-6) and settle.refunded == 4640 - settle.amount
    assert client.balance() == round(INITIAL_USD - settle.amount / 1_000_000, 6)


def test_transcription_holds_the_longest_file_and_settles_on_its_length(client: Client) -> None:
    files = {"audio": ("a.wav", _wav(), "audio/wav")}
    request_id = submit(client, "audiofile2txt", data={"model": "WhisperLargeV3", "include_ts": "1"}, files=files)
    assert wait(client, request_id)["status"] == "done"
    hold, settle = settled(client, request_id)
    assert hold.amount == 211_863  # 600 minutes: 0.001863 + 10 h x 0.021
    assert settle.amount == math.ceil(1863 + 21_000 * 62.25 / 3600)  # the worker measured 62.25 s


def test_a_failed_job_is_refunded(client: Client) -> None:
    request_id = submit(client, "txt2img", json={**IMAGE, "prompt": "fail"})
    assert wait(client, request_id)["status"] == "error"
    kinds = [(e.kind, e.amount) for e in settled(client, request_id)]
    assert kinds == [("hold", IMAGE_MICRO), ("refund", 0)]
    assert client.balance() == INITIAL_USD


def test_a_cancelled_job_is_refunded(client: Client) -> None:
    body = {"model": "Ltxv_13B_0_9_8_Distilled_FP8", "prompt": "slow:3", "width": 256, "height": 256,
            "frames": 48, "fps": 24, "steps": 1}
    request_id = submit(client, "txt2video", json=body)
    assert client.balance() == round(INITIAL_USD - 0.001737, 6)
    cancelled = client.http.post(f"{client.gateway.url}/v1/jobs/video/{request_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert wait(client, request_id)["status"] == "error"
    assert [e.kind for e in settled(client, request_id)] == ["hold", "refund"]
    assert client.balance() == INITIAL_USD


def test_a_timed_out_job_is_refunded(client: Client) -> None:
    # Music jobs time out after 5 s on this gateway (tests/billing/conftest.py).
    body = {"model": "ACE-Step-v1.5-turbo", "caption": "slow:8", "duration": 30, "inference_steps": 8}
    request_id = submit(client, "txt2music", json=body)
    assert wait(client, request_id, timeout_s=20)["status"] == "error"
    assert [e.kind for e in settled(client, request_id)] == ["hold", "refund"]
    assert client.balance() == INITIAL_USD


def test_not_enough_balance_is_the_seeds_422_and_starts_nothing(billing_gateway: Gateway) -> None:
    key, key_id = new_key(billing_gateway)
    client = Client(billing_gateway, key, key_id)
    _ledger_call(billing_gateway, lambda ledger: ledger.hold(key_id, "drain", 5_000_000 - 1000, task="t", model="m",
                                                             quantities={}))
    response = client.http.post(f"{client.base}/txt2img", json=IMAGE)
    assert response.status_code == 422
    body = response.json()
    assert body["errors"] == [{"field": "balance", "messages": ["Not enough balance."]}]
    assert [e.kind for e in entries(client)] == ["hold"]  # only the drain: nothing held, nothing run
    client.http.close()


def test_fifty_parallel_submits_against_a_balance_for_ten(billing_gateway: Gateway) -> None:
    key, key_id = new_key(billing_gateway)
    client = Client(billing_gateway, key, key_id)
    _ledger_call(billing_gateway, lambda ledger: ledger.hold(key_id, "drain", 5_000_000 - 10 * IMAGE_MICRO,
                                                             task="t", model="m", quantities={}))

    def one(_: int) -> httpx.Response:
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
            return http.post(f"{client.base}/txt2img", json=IMAGE)

    with ThreadPoolExecutor(max_workers=25) as pool:
        responses = list(pool.map(one, range(50)))
    accepted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 422]
    assert len(accepted) == 10 and len(refused) == 40, [r.status_code for r in responses]
    assert all(r.json()["errors"][0]["field"] == "balance" for r in refused)
    for response in accepted:
        request_id = response.json()["data"]["request_id"]
        assert wait(client, request_id)["status"] == "done"
        settled(client, request_id)
    assert client.balance() == 0.0
    client.http.close()
