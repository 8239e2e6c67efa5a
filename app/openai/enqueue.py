"""The /v1 jobs API's enqueue: start a request as a RunPod job and answer 202 with the seeds'
enqueue body (the native and OpenRouter dialects answer their own way around ``start_job``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response

from app.errors import is_openrouter_path
from app.jobs.idempotency import Idempotency
from app.jobs.runner import Call, start_job
from app.jobs.schemas import EnqueueBody, RunPodJob

ENQUEUE_OBJECTS = {
    "chat": "chat.completion.enqueue",
    "images": "image.generation.enqueue",
    "transcribe": "audio.transcription.enqueue",
    "embeddings": "embedding.enqueue",
    "speech": "audio.speech.enqueue",
    "music": "audio.music.enqueue",
    "video": "video.generation.enqueue",
}


async def enqueue(
    call: Call,
    job_input: dict[str, Any],
    *,
    webhook_url: str | None,
    digest: str,
    stream: bool = False,
    options: dict[str, Any] | None = None,
) -> Response[bytes]:
    """Start the job with /run and answer 202 with the seed's enqueue body.

    ``digest`` fingerprints the client's request for ``Idempotency-Key`` checks.
    """
    services, request, principal, route = call.services, call.request, call.principal, call.route
    idempotency = Idempotency.from_request(services, request, principal, digest)
    if idempotency is not None:
        replay = await idempotency.claim()
        if replay is not None:
            return _accepted(replay, route.surface, request.scope["path"], replayed=True)
    try:
        record = await start_job(call, job_input, webhook_url=webhook_url, stream=stream, options=options)
    except BaseException:
        if idempotency is not None:
            await idempotency.release()
        raise
    body = msgspec.json.encode(
        EnqueueBody(
            id=record.id,
            object=ENQUEUE_OBJECTS[route.surface],
            created=record.created,
            status="queued",
            surface=route.surface,
            model=route.public_model,
            endpoint_id=route.endpoint_id,
            runpod=RunPodJob(record.id, record.status),
        )
    )
    if idempotency is not None:
        await idempotency.store(body)
    return _accepted(body, route.surface, request.scope["path"], replayed=False)


def _accepted(body: bytes, surface: str, path: str, *, replayed: bool) -> Response[bytes]:
    job_id = msgspec.json.decode(body)["id"]
    # The jobs API is served under both prefixes: point where the client already talks.
    prefix = "/api/v1" if is_openrouter_path(path) else "/v1"
    headers = {"location": f"{prefix}/jobs/{surface}/{job_id}"}
    if replayed:
        headers["idempotent-replayed"] = "true"
    return Response(content=body, status_code=202, media_type="application/json", headers=headers)
