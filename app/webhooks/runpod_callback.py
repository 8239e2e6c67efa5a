"""POST /v1/webhooks/runpod/{nonce}?sig=: RunPod reports a finished job.

RunPod does not sign webhooks, so the callback URL carries its own proof: a nonce stored
on the job record at /run and an HMAC of it under ``DRYAPI_SIGNING_SECRET``. The body's
``id`` names the record, whose nonce must be the URL's. Anything else is refused with 404.
"""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from litestar import Request, post
from litestar.datastructures import State

from app.errors import InvalidRequest, NotFound
from app.services import Services


@post("/v1/webhooks/runpod/{nonce:str}", exclude_from_auth=True, status_code=200, include_in_schema=False)
async def runpod_callback(nonce: str, request: Request[Any, Any, Any], state: State, sig: str = "") -> dict[str, str]:
    services: Services = state.services
    refused = NotFound("Unknown callback", code="callback_refused")
    if not sig or not services.signer.verify(sig, "runpod-callback", nonce):
        raise refused
    try:
        body = msgspec.json.decode(await request.body())
    except (msgspec.DecodeError, RecursionError):
        raise InvalidRequest("The callback body is not JSON") from None
    job_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(job_id, str) or not job_id:
        raise refused
    record = await services.jobs.get(job_id)
    if record is None or not hmac.compare_digest(record.nonce, nonce):
        raise refused
    result = await state.tracker.observe(record, body)
    if result["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"):
        await state.watcher.forget(record.id)
    return {"status": "ok"}
