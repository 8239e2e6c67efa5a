"""Async mode: Prefer: respond-async and webhook_url give 202 with the seed's enqueue body."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from app.jobs.records import JobStore
from app.store import Keys, create_redis
from tests.gateway import workers
from tests.gateway.conftest import Gateway, unique


def _record(gateway: Gateway, job_id: str) -> Any:
    async def fetch() -> Any:
        redis = create_redis(gateway.settings.redis_url)
        try:
            return await JobStore(redis, Keys(gateway.settings.redis_prefix), retention_s=0).get(job_id)
        finally:
            await redis.aclose()

    return asyncio.run(fetch())


def test_enqueue_body_matches_the_seed(gateway: Gateway, api_key: str) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/images/generations",
        json={"prompt": "queued fox"},
        headers={"authorization": f"Bearer {api_key}", "prefer": "respond-async, wait=0"},
    )
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "object", "created", "status", "surface", "model", "endpoint_id", "runpod"}
    assert body["object"] == "image.generation.enqueue"
    assert body["status"] == "queued"
    assert body["surface"] == "images"
    assert body["model"] == "tiny-image"
    assert body["endpoint_id"] == "img-ep"
    assert body["runpod"] == {"id": body["id"], "status": "IN_QUEUE"}
    assert response.headers["location"] == f"/v1/jobs/images/{body['id']}"
    record = _record(gateway, body["id"])
    assert record.surface == "images" and record.model == "tiny-image" and record.nonce


def test_an_api_v1_enqueue_points_at_the_api_v1_jobs_route(gateway: Gateway, api_key: str) -> None:
    headers = {"authorization": f"Bearer {api_key}", "prefer": "respond-async, wait=0"}
    response = httpx.post(f"{gateway.url}/api/v1/images/generations", json={"prompt": "fox"}, headers=headers)
    assert response.status_code == 202
    location = response.headers["location"]
    assert location == f"/api/v1/jobs/images/{response.json()['id']}"
    status = httpx.get(f"{gateway.url}{location}", headers=headers)
    assert status.status_code == 200 and status.json()["id"] == response.json()["id"]


def test_every_surface_has_its_enqueue_object(gateway: Gateway, api_key: str) -> None:
    headers = {"authorization": f"Bearer {api_key}", "prefer": "respond-async"}
    chat = httpx.post(f"{gateway.url}/v1/chat/completions", headers=headers,
                      json={"messages": [{"role": "user", "content": "q"}]})
    emb = httpx.post(f"{gateway.url}/v1/embeddings", headers=headers, json={"input": "q"})
    stt = httpx.post(f"{gateway.url}/v1/audio/transcriptions", headers=headers,
                     files={"file": ("a.wav", b"RIFF0000", "audio/wav")})
    assert [r.status_code for r in (chat, emb, stt)] == [202, 202, 202]
    assert chat.json()["object"] == "chat.completion.enqueue"
    assert emb.json()["object"] == "embedding.enqueue"
    assert stt.json()["object"] == "audio.transcription.enqueue"
    assert stt.json()["surface"] == "transcribe"


def test_webhook_url_makes_it_async_and_must_be_safe(gateway: Gateway, api_key: str) -> None:
    headers = {"authorization": f"Bearer {api_key}"}
    allowed = httpx.post(f"{gateway.url}/v1/embeddings", headers=headers,
                         json={"input": "q", "webhook_url": "http://127.0.0.1:9/hook"})
    assert allowed.status_code == 202
    for url in ("http://example.com/hook", "https://169.254.169.254/x", "https://10.1.2.3/x", "file:///x"):
        refused = httpx.post(f"{gateway.url}/v1/embeddings", headers=headers, json={"input": "q", "webhook_url": url})
        assert refused.status_code == 400, url
        assert refused.json()["error"]["param"] == "webhook_url"


def test_idempotency_key_starts_one_job(gateway: Gateway, api_key: str) -> None:
    headers = {"authorization": f"Bearer {api_key}", "prefer": "respond-async", "idempotency-key": unique()}
    payload = {"prompt": "only once"}
    before = workers.CALLS["images"]
    first = httpx.post(f"{gateway.url}/v1/images/generations", headers=headers, json=payload)
    second = httpx.post(f"{gateway.url}/v1/images/generations", headers=headers, json=payload)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    other = httpx.post(f"{gateway.url}/v1/images/generations", headers=headers, json={"prompt": "different"})
    assert other.status_code == 400
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    # The queued job may still be running; it must have been started at most once.
    assert workers.CALLS["images"] - before <= 1
