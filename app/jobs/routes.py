"""/v1/jobs/{surface}/{id}: status, download, cancel; /v1/results/{id}: signed result links."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter

from app import docs
from app.auth import principal_of
from app.errors import GatewayError, InvalidRequest, NotFound, PermissionDenied
from app.jobs.access import current_status, load_owned, not_found
from app.jobs.outputs import media_links, text_of
from app.jobs.records import TERMINAL_STATUSES
from app.limits import limit_jobs, rate_headers
from app.services import Services

_encode = msgspec.json.Encoder().encode


class JobNotReady(GatewayError):
    status_code = 409
    error_type = "invalid_request_error"
    default_code = "job_not_completed"
    retryable = True


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(content=_encode(body), status_code=status, media_type="application/json", headers=headers)


def _override(services: Services, request: Request[Any, Any, Any], endpoint_id: str | None) -> str | None:
    if endpoint_id is None:
        return None
    if not principal_of(request).admin:
        raise PermissionDenied("endpointId may only be set with an admin key", param="endpointId")
    base = services.settings.local_upstream or services.routing.config.upstream.base_url
    return f"{base.rstrip('/')}/{endpoint_id}"


@get(
    "/v1/jobs/{surface:str}/{job_id:str}",
    summary="Get async job status",
    description="The job's status body (RunPod's, without its input echo); `output` once COMPLETED. "
    "Only the key that created the job (or an admin key) sees it. Live updates: the WebSocket "
    "`/v1/jobs/{surface}/{job_id}/ws` (Authorization header, or `?api_key=` from browsers) sends this body "
    "now and on every change, then closes 1000 after the terminal one.",
    tags=["jobs"],
    middleware=[rate_headers],
    responses=docs.JOB_RESPONSES,
)
async def job_status(
    surface: str,
    job_id: str,
    request: Request[Any, Any, Any],
    state: State,
    endpoint_id: str | None = Parameter(query="endpointId", default=None, min_length=1),
) -> Response[bytes]:
    services: Services = state.services
    await limit_jobs(request, principal_of(request))
    record = await load_owned(services, principal_of(request), surface, job_id)
    body = await current_status(
        services, state.tracker, state.watcher, record, endpoint_url=_override(services, request, endpoint_id)
    )
    return _json(body)


@get(
    "/v1/jobs/{surface:str}/{job_id:str}/download",
    summary="Download a completed job",
    description="Media links for image jobs; otherwise the output as a JSON or text attachment (`format`). "
    "409 `job_not_completed` while the job runs.",
    tags=["jobs"],
    middleware=[rate_headers],
    responses=docs.DOWNLOAD_RESPONSES,
)
async def job_download(
    surface: str,
    job_id: str,
    request: Request[Any, Any, Any],
    state: State,
    format: str = Parameter(query="format", default="json"),
) -> Response[bytes]:
    services: Services = state.services
    await limit_jobs(request, principal_of(request))
    if format not in ("json", "txt"):
        raise InvalidRequest("format must be json or txt", param="format")
    record = await load_owned(services, principal_of(request), surface, job_id)
    body = await current_status(services, state.tracker, state.watcher, record)
    if body["status"] != "COMPLETED":
        if body["status"] in TERMINAL_STATUSES:
            error = InvalidRequest(f"Job {job_id} ended {body['status']}; there is nothing to download")
            error.code = "job_failed"
            raise error
        raise JobNotReady(f"Job {job_id} is {body['status']}; download it once it is COMPLETED")
    output = body.get("output")
    links = media_links(record.surface, output)
    if links:
        return _json({"job_id": job_id, "surface": record.surface, "mode": "links", "links": links})
    disposition = f'attachment; filename="{job_id}.{format}"'
    if format == "txt":
        return Response(
            content=text_of(record.surface, output).encode(),
            media_type="text/plain; charset=utf-8",
            headers={"content-disposition": disposition},
        )
    return _json(output, headers={"content-disposition": disposition})


@post(
    "/v1/jobs/{surface:str}/{job_id:str}/cancel",
    summary="Cancel a job",
    description="Asks RunPod to cancel a queued or running job; answers with the job's status body.",
    tags=["jobs"],
    status_code=200,
    responses=docs.JOB_RESPONSES,
)
async def job_cancel(surface: str, job_id: str, request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    services: Services = state.services
    record = await load_owned(services, principal_of(request), surface, job_id)
    if record.status not in TERMINAL_STATUSES:
        await services.client.cancel(record.endpoint_url, state.watcher.api_key(), job_id)
    return _json(await current_status(services, state.tracker, state.watcher, record))


@get(
    "/v1/results/{job_id:str}",
    summary="A job's result through a signed link",
    description="The `result_url` of a job.completed webhook: no API key, the `exp` and `sig` query "
    "parameters are the proof.",
    tags=["jobs"],
    exclude_from_auth=True,
    responses=docs.RESULT_RESPONSES,
)
async def signed_result(job_id: str, state: State, exp: int = 0, sig: str = "") -> Response[bytes]:
    services: Services = state.services
    if not services.signer.verify_expiring("result", job_id, exp, sig):
        raise NotFound("This result link is invalid or has expired", code="result_link_invalid")
    record = await services.jobs.get(job_id)
    if record is None:
        raise not_found(job_id)
    return _json(await current_status(services, state.tracker, state.watcher, record))
