"""/v1 requests pay from the same balance by the same rules (real HTTP, the real openai SDK):
images by their txt2img quantities, chat by its tokens (held for max_tokens, settled on the
worker's usage, streams from their usage chunk), embeddings by tokens; a short balance is
OpenAI's 429 insufficient_quota, never retried."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.billing.conftest import INITIAL_USD, Client, new_key
from tests.billing.test_charging import _ledger_call, entries
from tests.gateway.conftest import Gateway


def _sdk(client: Client, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{client.gateway.url}/v1", api_key=key, max_retries=0)


@pytest.fixture
def keyed(billing_gateway: Gateway) -> Iterator[tuple[Client, str]]:
    key, key_id = new_key(billing_gateway)
    client = Client(billing_gateway, key, key_id)
    yield client, key
    client.http.close()


def test_a_sync_image_is_charged_its_txt2img_price(keyed: tuple[Client, str]) -> None:
    client, key = keyed
    _sdk(client, key).images.generate(model="Flux1schnell", prompt="a lighthouse", size="512x512",
                                      extra_body={"steps": 4})
    hold, settle = entries(client)
    assert (hold.kind, hold.amount, hold.task) == ("hold", 1360, "txt2img")
    assert (settle.kind, settle.amount) == ("settle", 1360)
    assert client.balance() == round(INITIAL_USD - 0.00136, 6)


def test_a_sync_chat_holds_for_max_tokens_and_settles_on_usage(keyed: tuple[Client, str]) -> None:
    client, key = keyed
    reply = _sdk(client, key).chat.completions.create(
        model="Llama3_8B_Instruct", messages=[{"role": "user", "content": "hello there"}], max_tokens=1000)
    assert reply.usage is not None
    hold, settle = entries(client)
    assert hold.amount >= 80  # 1,000 output tokens at 0.00008 USD per 1,000
    expected = math.ceil(0.05 * reply.usage.prompt_tokens + 0.08 * reply.usage.completion_tokens - 1e-6)
    assert settle.kind == "settle" and settle.amount == expected and settle.refunded == hold.amount - expected


def test_a_streamed_chat_settles_from_its_usage_chunk(keyed: tuple[Client, str]) -> None:
    client, key = keyed
    stream = _sdk(client, key).chat.completions.create(
        model="Llama3_8B_Instruct", messages=[{"role": "user", "content": "one two three"}], max_tokens=500,
        stream=True, stream_options={"include_usage": True})
    usage = [chunk.usage for chunk in stream if chunk.usage is not None]
    assert len(usage) == 1
    found = entries(client)
    assert [e.kind for e in found] == ["hold", "settle"]
    assert found[1].amount == math.ceil(0.05 * usage[0].prompt_tokens + 0.08 * usage[0].completion_tokens - 1e-6)


def test_an_async_chat_settles_when_its_job_ends(keyed: tuple[Client, str]) -> None:
    client, _ = keyed
    response = client.http.post(f"{client.gateway.url}/v1/chat/completions", headers={"Prefer": "respond-async"},
                                json={"model": "Llama3_8B_Instruct", "max_tokens": 100,
                                      "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    for _ in range(200):
        status = client.http.get(f"{client.gateway.url}/v1/jobs/chat/{job_id}").json()
        if status["status"] == "COMPLETED":
            break
        time.sleep(0.05)
    found = entries(client)
    assert [e.kind for e in found] == ["hold", "settle"] and found[1].job_id == job_id
    assert found[1].amount == math.ceil(0.05 * 3 + 0.08 * 2 - 1e-6)  # the worker's usage: 3 in, "echo: hi" out


def test_embeddings_settle_on_the_tokens_counted(keyed: tuple[Client, str]) -> None:
    client, key = keyed
    _sdk(client, key).embeddings.create(model="Bge_M3_INT8", input=["a b c " * 300])
    hold, settle = entries(client)
    assert hold.amount == math.ceil(0.068 * 600) == 41  # 1,800 characters held as 600 tokens
    # The worker counted 900 (62 micro-USD); the charge stops at the hold plus settle_margin (0.5).
    assert settle.amount == math.floor(41 * 1.5) == 61 and settle.refunded == -20


def test_a_short_balance_is_insufficient_quota_and_not_retried(keyed: tuple[Client, str]) -> None:
    client, key = keyed
    _ledger_call(client.gateway, lambda ledger: ledger.hold(client.key_id, "drain", 5_000_000 - 100, task="t",
                                                            model="m", quantities={}))
    response = httpx.post(f"{client.gateway.url}/v1/images/generations", headers={"Authorization": f"Bearer {key}"},
                          json={"model": "Flux1schnell", "prompt": "p", "size": "512x512"})
    assert response.status_code == 429
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["type"] == "insufficient_quota" and error["code"] == "insufficient_quota"
    with pytest.raises(openai.RateLimitError) as caught:
        _sdk(client, key).chat.completions.create(model="Llama3_8B_Instruct", max_tokens=4000,
                                                  messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "insufficient_quota"
    assert [e.kind for e in entries(client)] == ["hold"]  # the drain only: nothing ran, nothing held


def test_a_transcription_settles_on_the_media_length_the_worker_reports(keyed: tuple[Client, str]) -> None:
    client, key = keyed
    audio = ("talk.wav", b"RIFF" + b"\x00" * 2000, "audio/wav")
    _sdk(client, key).audio.transcriptions.create(model="WhisperLargeV3", file=audio)
    hold, settle = entries(client)
    assert (hold.kind, hold.amount) == ("hold", 211_863)  # held for the longest media a job may take
    # The fake worker reports 62.25 s: 0.001863 + 62.25 s * 0.021 USD/h, rounded up to whole micro-USD.
    assert (settle.kind, settle.amount) == ("settle", 2227)


def test_speech_is_charged_per_character(keyed: tuple[Client, str]) -> None:
    client, key = keyed
    audio = _sdk(client, key).audio.speech.create(model="Kokoro", voice="af_sky", input="Hello there", speed=2.0)
    assert audio.content == b"RIFFaudio:Hello there"
    hold, settle = entries(client)
    assert (hold.kind, hold.amount, hold.task) == ("hold", 5, "txt2audio")  # 11 chars at 0.77/M, half at 2x
    assert (settle.kind, settle.amount) == ("settle", 5)


def test_usage_reports_what_the_key_spent(keyed: tuple[Client, str]) -> None:
    client, key = keyed
    _sdk(client, key).images.generate(model="Flux1schnell", prompt="a lighthouse", size="512x512",
                                      extra_body={"steps": 4})
    report = httpx.get(f"{client.gateway.url}/admin/usage", params={"key_id": client.key_id},
                       headers={"authorization": "Bearer admin-test-key"}).json()
    assert report["spend_usd"] == 0.00136 and report["days"][-1]["spend_usd"] == 0.00136
