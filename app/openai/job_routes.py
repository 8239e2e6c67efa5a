"""/v1/jobs/{surface}/{jobId}: status, download, cancel; /v1/results/{id}: signed result links.

Path parameters are named as the reference names them (``jobId``); ``surface`` is an enum,
so an unknown surface is a 400 naming it. A plain GET on the WebSocket route answers 426.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter

from app import docs
from app.auth import principal_of
from app.errors import GatewayError, InvalidRequest, NotFound, PermissionDenied
from app.jobs.access import current_status, load_owned, not_found
from app.jobs.records import TERMINAL_STATUSES
from app.limits import limit_jobs, rate_headers
from app.openai.outputs import media_links, text_of
from app.routing.schema import Surface
from app.services import Services

_encode = msgspec.json.Encoder().encode


class UpgradeRequired(GatewayError):
    status_code = 426
    error_type = "invalid_request_error"
    default_code = "upgrade_required"

    def response_headers(self) -> dict[str, str]:
        return super().response_headers() | {"upgrade": "websocket", "connection": "Upgrade"}


class JobNotReady(GatewayError):
    status_code = 409
    error_type = "invalid_request_error"
    default_code = "job_not_completed"
    retryable = True


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(content=_encode(body), status_code=status, media_type="application/json", headers=headers)


def _override(services: Services, request: Request[Any, Any, Any], endpoint_id: str | None) -> str | None:
    """``?endpointId=``: look the job up on another endpoint (admin keys only)."""
    if endpoint_id is None:
        return None
    if not principal_of(request).admin:
        raise PermissionDenied("endpointId may only be set with an admin key", param="endpointId")
    base = services.settings.local_upstream or services.routing.config.upstream.base_url
    return f"{base.rstrip('/')}/{endpoint_id}"


_SURFACE_DOC = "Inference surface used to select the provider endpoint."
_JOB_ID_DOC = "Provider job identifier returned from an enqueue route."
_ENDPOINT_DOC = "Optional provider endpoint override (admin keys). If omitted, routing uses surface/model mapping."
SurfaceParam = Annotated[Surface, Parameter(description=_SURFACE_DOC)]
JobIdParam = Annotated[str, Parameter(description=_JOB_ID_DOC, min_length=1)]
EndpointIdParam = Annotated[
    str | None, Parameter(query="endpointId", default=None, min_length=1, description=_ENDPOINT_DOC)
]


@get(
    "/v1/jobs/{surface:str}/{jobId:str}",
    summary="Get async job status",
    description="The job's status body (RunPod's, without its input echo); `output` once COMPLETED. "
    "Only the key that created the job sees it; an admin key sees any job, including provider jobs the "
    "gateway did not enqueue (looked up on the surface's endpoint, or `endpointId`). Live updates: the "
    "WebSocket `/v1/jobs/{surface}/{jobId}/ws` sends this body now and on every change.",
    tags=[docs.TAG_JOBS],
    middleware=[rate_headers],
    responses=docs.JOB_RESPONSES,
)
async def job_status(
    surface: SurfaceParam,
    jobId: JobIdParam,
    request: Request[Any, Any, Any],
    state: State,
    endpoint_id: EndpointIdParam = None,
) -> Response[bytes]:
    services: Services = state.services
    principal = principal_of(request)
    await limit_jobs(request, principal)
    override = _override(services, request, endpoint_id)
    record = await load_owned(
        services, principal, surface, jobId, provider_lookup=True, endpoint_url=override
    )
    body = await current_status(services, state.tracker, state.watcher, record, endpoint_url=override)
    return _json(body)


@get(
    "/v1/jobs/{surface:str}/{jobId:str}/download",
    summary="Download links or serialized payload for a completed job",
    description="Media links for image jobs; otherwise the output as a JSON or text attachment (`format`). "
    "409 `job_not_completed` while the job runs. Admin keys may download provider jobs too.",
    tags=[docs.TAG_JOBS],
    middleware=[rate_headers],
    responses=docs.DOWNLOAD_RESPONSES,
)
async def job_download(
    surface: SurfaceParam,
    jobId: JobIdParam,
    request: Request[Any, Any, Any],
    state: State,
    format: Annotated[
        Literal["json", "txt"],
        Parameter(query="format", description="Download file format when no direct media links are available."),
    ] = "json",
    endpoint_id: EndpointIdParam = None,
) -> Response[bytes]:
    services: Services = state.services
    principal = principal_of(request)
    await limit_jobs(request, principal)
    override = _override(services, request, endpoint_id)
    job_id = jobId
    record = await load_owned(services, principal, surface, job_id, provider_lookup=True, endpoint_url=override)
    body = await current_status(services, state.tracker, state.watcher, record, endpoint_url=override)
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
            media_type="text/plain",  # Litestar adds "; charset=utf-8" itself
            headers={"content-disposition": disposition},
        )
    return _json(output, headers={"content-disposition": disposition})


@post(
    "/v1/jobs/{surface:str}/{jobId:str}/cancel",
    summary="Cancel a job",
    description="Asks RunPod to cancel a queued or running job; answers with the job's status body.",
    tags=[docs.TAG_JOBS],
    status_code=200,
    responses=docs.JOB_RESPONSES,
)
async def job_cancel(
    surface: SurfaceParam, jobId: JobIdParam, request: Request[Any, Any, Any], state: State
) -> Response[bytes]:
    services: Services = state.services
    job_id = jobId
    record = await load_owned(services, principal_of(request), surface, job_id)
    if record.status not in TERMINAL_STATUSES:
        await services.client.cancel(record.endpoint_url, state.watcher.api_key(), job_id)
    return _json(await current_status(services, state.tracker, state.watcher, record))


@get(
    "/v1/results/{job_id:str}",
    summary="A job's result through a signed link",
    description="The `result_url` of a job.completed webhook: no API key, the `exp` and `sig` query "
    "parameters are the proof.",
    tags=[docs.TAG_JOBS],
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


@get(
    "/v1/jobs/{surface:str}/{jobId:str}/ws",
    summary="Stream async job status over WebSocket",
    description="Upgrade to a WebSocket (Authorization header, or `?api_key=` from browsers): the job's status "
    "body now and on every change, then close 1000 after the terminal one (4401 bad key, 4404 unknown job, "
    "4429 rate limited). A request without `Upgrade: websocket` is answered 426 `upgrade_required`.",
    tags=[docs.TAG_JOBS],
    exclude_from_auth=True,  # the socket checks the key after accepting, so browsers see close codes
    responses=docs.WEBSOCKET_RESPONSES,
)
async def job_events_without_upgrade(
    surface: SurfaceParam, jobId: JobIdParam, endpoint_id: EndpointIdParam = None
) -> Response[bytes]:
    raise UpgradeRequired("This route is a WebSocket: connect with `Upgrade: websocket`")
