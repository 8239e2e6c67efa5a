"""The seed's "RunPod Jobs" routes: RunPod's queue API proxied verbatim, for admin keys only.

RunPod's 2xx and 4xx answers pass through as they are; its 5xx answers and transport
failures become the gateway's ``upstream_error`` (OpenAI error shape), like on every route.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import State

from app import docs
from app.auth import require_admin
from app.services import Services
from app.upstream.client import api_failure


async def _proxy(request: Request[Any, Any, Any], state: State, endpoint_id: str, operation: str) -> Response[bytes]:
    services: Services = state.services
    base = services.settings.local_upstream or services.routing.config.upstream.base_url
    api_key = services.upstream_api_key()
    body = await request.body() if request.method == "POST" else None
    params = dict(request.query_params)
    response = await services.client.request(
        request.method,
        f"{base.rstrip('/')}/{endpoint_id}/{operation}",
        api_key,
        raw_body=body or None,
        params=params or None,
        timeout_s=330.0 if operation == "runsync" else None,
    )
    if response.status >= 500:  # RunPod failing is ours to report; its 2xx/4xx answers stay verbatim
        raise api_failure(response)
    return Response(content=response.content, status_code=response.status, media_type=response.content_type)


@post(
    "/{endpoint_id:str}/run",
    status_code=200,
    summary="RunPod run",
    description="Queue a job (RunPod /run), body passed verbatim; RunPod's answer verbatim. Admin keys only.",
    responses=docs.PROXY_RESPONSES,
)
async def run(endpoint_id: str, request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    return await _proxy(request, state, endpoint_id, "run")


@post(
    "/{endpoint_id:str}/runsync",
    status_code=200,
    summary="RunPod runsync",
    description="Run a job and wait (RunPod /runsync); RunPod's answer verbatim. Admin keys only.",
    responses=docs.PROXY_RESPONSES,
)
async def runsync(endpoint_id: str, request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    return await _proxy(request, state, endpoint_id, "runsync")


@get(
    "/{endpoint_id:str}/status/{job_id:str}",
    summary="RunPod status",
    description="A job's RunPod status body; RunPod's answer verbatim. Admin keys only.",
    responses=docs.PROXY_RESPONSES,
)
async def status(endpoint_id: str, job_id: str, request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    return await _proxy(request, state, endpoint_id, f"status/{job_id}")


@get(
    "/{endpoint_id:str}/stream/{job_id:str}",
    summary="RunPod stream",
    description="A streaming job's pending chunks; RunPod's answer verbatim. Admin keys only.",
    responses=docs.PROXY_RESPONSES,
)
async def stream(endpoint_id: str, job_id: str, request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    return await _proxy(request, state, endpoint_id, f"stream/{job_id}")


@post(
    "/{endpoint_id:str}/cancel/{job_id:str}",
    status_code=200,
    summary="RunPod cancel",
    description="Cancel a job; RunPod's answer verbatim. Admin keys only.",
    responses=docs.PROXY_RESPONSES,
)
async def cancel(endpoint_id: str, job_id: str, request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    return await _proxy(request, state, endpoint_id, f"cancel/{job_id}")


@post(
    "/{endpoint_id:str}/retry/{job_id:str}",
    status_code=200,
    summary="RunPod retry",
    description="Retry a failed or timed-out job; RunPod's answer verbatim. Admin keys only.",
    responses=docs.PROXY_RESPONSES,
)
async def retry(endpoint_id: str, job_id: str, request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    return await _proxy(request, state, endpoint_id, f"retry/{job_id}")


@post(
    "/{endpoint_id:str}/purge-queue",
    status_code=200,
    summary="RunPod purge-queue",
    description="Drop every queued job of the endpoint; RunPod's answer verbatim. Admin keys only.",
    responses=docs.PROXY_RESPONSES,
)
async def purge_queue(endpoint_id: str, request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    return await _proxy(request, state, endpoint_id, "purge-queue")


@get(
    "/{endpoint_id:str}/health",
    summary="RunPod health",
    description="Worker and job counts of the endpoint; RunPod's answer verbatim. Admin keys only.",
    responses=docs.PROXY_RESPONSES,
)
async def health(endpoint_id: str, request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    return await _proxy(request, state, endpoint_id, "health")


runpod_router = Router(
    path="/v1/runpod",
    route_handlers=[run, runsync, status, stream, cancel, retry, purge_queue, health],
    guards=[require_admin],
    tags=["runpod"],
)
