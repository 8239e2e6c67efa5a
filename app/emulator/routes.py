"""RunPod's serverless job API under ``/v2/{endpoint_id}/`` (reference/runpod.md §1)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post, route
from litestar.params import FromPath

from app.emulator.render import short_body, status_body, stream_body
from app.emulator.store import JobStatus
from app.emulator.web import EmulatorError, decode_body, emulator_for, is_object, job_for, json_response

MB = 1_000_000
RUN_MAX_BYTES = 10 * MB  # RunPod's payload caps
RUNSYNC_MAX_BYTES = 20 * MB
WAIT_DEFAULT_MS, WAIT_MIN_MS, WAIT_MAX_MS = 90_000, 1_000, 300_000

Req = Request[Any, Any, Any]


class Policy(msgspec.Struct):
    executionTimeout: float | None = None  # ms
    ttl: float | None = None  # ms, queue + run
    lowPriority: bool = False  # accepted; there is no scaling to skip here


class JobRequest(msgspec.Struct):
    input: msgspec.Raw = msgspec.Raw()
    webhook: str | None = None
    policy: Policy | None = None


def _positive_s(value_ms: float | None, name: str) -> float | None:
    if value_ms is None:
        return None
    if value_ms <= 0:
        raise EmulatorError(400, f"policy.{name} must be a positive number of milliseconds")
    return value_ms / 1000.0


async def _submit(request: Req, endpoint_id: str, *, sync: bool) -> Any:
    emulator = emulator_for(request, endpoint_id)
    body: JobRequest = decode_body(await request.body(), JobRequest)
    if not body.input:
        raise EmulatorError(400, "the request body must have an 'input' object")
    if not is_object(body.input):
        raise EmulatorError(400, "'input' must be a JSON object")
    if body.webhook is not None and not body.webhook.startswith(("http://", "https://")):
        raise EmulatorError(400, "'webhook' must be an http(s) URL")
    policy = body.policy or Policy()
    return emulator.submit(
        endpoint_id,
        body.input,
        sync=sync,
        webhook=body.webhook,
        execution_timeout_s=_positive_s(policy.executionTimeout, "executionTimeout"),
        ttl_s=_positive_s(policy.ttl, "ttl"),
    )


def _wait_ms(request: Req) -> int:
    raw = request.query_params.get("wait")
    if raw is None:
        return WAIT_DEFAULT_MS
    try:
        wait = int(raw)
    except ValueError:
        raise EmulatorError(400, "'wait' must be an integer number of milliseconds") from None
    return min(max(wait, WAIT_MIN_MS), WAIT_MAX_MS)


class JobRoutes(Controller):
    path = "/v2/{endpoint_id:str}"

    @post("/run", status_code=200, request_max_body_size=RUN_MAX_BYTES)
    async def run(self, request: Req, endpoint_id: FromPath[str]) -> Response[bytes]:
        job = await _submit(request, endpoint_id, sync=False)
        return json_response(short_body(job))

    @post("/runsync", status_code=200, request_max_body_size=RUNSYNC_MAX_BYTES)
    async def runsync(self, request: Req, endpoint_id: FromPath[str]) -> Response[bytes]:
        wait_s = _wait_ms(request) / 1000.0
        job = await _submit(request, endpoint_id, sync=True)
        await request.app.state.emulator.wait(job, wait_s)
        if job.terminal and not job.removed:
            return json_response(status_body(job))
        return json_response(short_body(job))

    @route("/status/{job_id:str}", http_method=["GET", "POST"], status_code=200)
    async def status(self, request: Req, endpoint_id: FromPath[str], job_id: FromPath[str]) -> Response[bytes]:
        job = job_for(emulator_for(request, endpoint_id), endpoint_id, job_id)
        return json_response(status_body(job, with_input=job.status is JobStatus.IN_PROGRESS))

    @route("/status-sync/{job_id:str}", http_method=["GET", "POST"], status_code=200)
    async def status_sync(self, request: Req, endpoint_id: FromPath[str], job_id: FromPath[str]) -> Response[bytes]:
        """Undocumented long-poll used by js-sdk and go-sdk: status once terminal or after ``wait``."""
        emulator = emulator_for(request, endpoint_id)
        job = job_for(emulator, endpoint_id, job_id)
        await emulator.wait(job, _wait_ms(request) / 1000.0)
        job = job_for(emulator, endpoint_id, job_id)
        return json_response(status_body(job, with_input=job.status is JobStatus.IN_PROGRESS))

    @route("/stream/{job_id:str}", http_method=["GET", "POST"], status_code=200)
    async def stream(self, request: Req, endpoint_id: FromPath[str], job_id: FromPath[str]) -> Response[bytes]:
        job = job_for(emulator_for(request, endpoint_id), endpoint_id, job_id)
        return json_response(stream_body(job))

    @post("/cancel/{job_id:str}", status_code=200)
    async def cancel(self, request: Req, endpoint_id: FromPath[str], job_id: FromPath[str]) -> Response[bytes]:
        emulator = emulator_for(request, endpoint_id)
        job = job_for(emulator, endpoint_id, job_id)
        emulator.cancel(job)
        return json_response(short_body(job))

    @post("/retry/{job_id:str}", status_code=200)
    async def retry(self, request: Req, endpoint_id: FromPath[str], job_id: FromPath[str]) -> Response[bytes]:
        emulator = emulator_for(request, endpoint_id)
        job = job_for(emulator, endpoint_id, job_id)
        if not emulator.retry(job):
            raise EmulatorError(400, f"only FAILED or TIMED_OUT jobs can be retried; this one is {job.status.value}")
        return json_response(short_body(job))

    @post("/purge-queue", status_code=200)
    async def purge_queue(self, request: Req, endpoint_id: FromPath[str]) -> Response[bytes]:
        removed = emulator_for(request, endpoint_id).purge(endpoint_id)
        return json_response({"removed": removed, "status": "completed"})

    @get("/health")
    async def health(self, request: Req, endpoint_id: FromPath[str]) -> Response[bytes]:
        return json_response(emulator_for(request, endpoint_id).health(endpoint_id))
