"""Running a request as a RunPod job: sync (runsync, then polling) or started for later (/run)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from litestar import Request
from structlog.contextvars import bind_contextvars

from app.auth import Principal
from app.disconnect import unless_disconnected
from app.errors import InvalidRequest, UpstreamTimeout
from app.jobs.outcome import job_output
from app.jobs.records import TERMINAL_STATUSES, JobRecord, new_record
from app.routing.resolver import Route
from app.services import Services

# RunPod holds a runsync request up to 90 s, but it names the job only when it returns; a
# shorter hold bounds how long a disconnected client's job runs before we can cancel it.
_RUNSYNC_WAIT_CAP_S = 30.0
_POLL_START_S = 0.25
_POLL_MAX_S = 2.0


@dataclass(frozen=True, slots=True)
class Call:
    """One client request bound for RunPod: this process's services, the HTTP request, who
    sent it, and the route it resolved to."""

    services: Services
    request: Request[Any, Any, Any]
    principal: Principal
    route: Route


async def run_sync(
    call: Call,
    job_input: dict[str, Any],
    options: dict[str, Any] | None = None,
    fields: dict[str, str] | None = None,
) -> Any:
    """Start with /runsync, poll until terminal or ``sync_timeout_s``; 504 names the job id.

    ``fields`` is the surface's client → handler field table, so a handler's complaint about
    ``num_images`` reaches the client as one about ``n``.
    """
    services, request, principal, route = call.services, call.request, call.principal, call.route
    client = services.client
    started = time.monotonic()

    def remember(result: dict[str, Any]) -> JobRecord:
        bind_contextvars(job_id=str(result["id"]))
        return new_record(
            id=str(result["id"]),
            owner=principal.key_id,
            surface=route.surface,
            model=route.public_model,
            endpoint_id=route.endpoint_id,
            endpoint_url=route.endpoint_url,
            status=str(result.get("status", "IN_QUEUE")),
            options=options or {},
        )

    async def cancel(job_id: str) -> None:
        await client.cancel(route.endpoint_url, route.api_key, job_id)
        await services.jobs.set_status(job_id, "CANCELLED")

    # RunPod names the job only when /runsync returns, so a client that leaves earlier has its
    # job cancelled as soon as that answer arrives (the request itself runs on, shielded).
    runsync = asyncio.ensure_future(
        client.runsync(route, job_input, wait_s=min(route.sync_timeout_s, _RUNSYNC_WAIT_CAP_S))
    )

    async def cancel_when_named() -> None:
        result = await runsync
        record = remember(result)
        await services.jobs.save(record, ttl_s=route.policy.ttl_s)
        if record.status not in TERMINAL_STATUSES:
            await cancel(record.id)
            await services.jobs.follow(record.id, route.surface)

    result = await unless_disconnected(request, asyncio.shield(runsync), cancel_when_named)
    record = remember(result)
    job_id = record.id
    await services.jobs.save(record, ttl_s=route.policy.ttl_s)

    async def poll() -> dict[str, Any]:
        current, delay = result, _POLL_START_S
        while current.get("status") not in TERMINAL_STATUSES:
            remaining = route.sync_timeout_s - (time.monotonic() - started)
            if remaining <= 0:
                await services.jobs.follow(job_id, route.surface)  # the result stays collectable
                raise UpstreamTimeout(
                    f"Job {job_id} did not finish within {route.sync_timeout_s:g}s; "
                    f"follow it at /v1/jobs/{route.surface}/{job_id}",
                    code="job_timeout",
                    headers={"x-dryapi-job-id": job_id},
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 1.5, _POLL_MAX_S)
            current = await client.status(route.endpoint_url, route.api_key, job_id)
        return current

    final = await unless_disconnected(request, poll(), lambda: cancel(job_id))
    if final.get("status") != record.status:
        await services.jobs.set_status(job_id, str(final["status"]))
    try:
        return job_output(final, job_id)
    except InvalidRequest as exc:
        if fields is not None:
            exc.param = client_param(fields, exc.param)
        raise


async def start_job(
    call: Call,
    job_input: dict[str, Any],
    *,
    webhook_url: str | None,
    stream: bool = False,
    options: dict[str, Any] | None = None,
) -> JobRecord:
    """Start the job with /run (RunPod calls back when it ends), record it and follow it.

    Every dialect's async path starts jobs here; each answers the client in its own words.
    """
    services, principal, route = call.services, call.principal, call.route
    record = new_record(
        id="",
        owner=principal.key_id,
        surface=route.surface,
        model=route.public_model,
        endpoint_id=route.endpoint_id,
        endpoint_url=route.endpoint_url,
        webhook_url=webhook_url,
        options=options or {},
        stream=stream,
    )
    callback = services.callback_url(record.nonce)
    result = await services.client.run(route, job_input, webhook=callback)
    record.id = str(result["id"])
    bind_contextvars(job_id=record.id)
    record.status = str(result.get("status", "IN_QUEUE"))
    # No realtime event yet: a queued job is "pending", which the seeds announce to nobody.
    await services.jobs.save(record, ttl_s=route.policy.ttl_s, follow=True)
    return record


def client_param(table: dict[str, str], param: str | None) -> str | None:
    """The client's name for a handler field a worker complained about (``num_images`` → ``n``)."""
    if param in ("width", "height"):
        return "size"
    for client_key, handler_key in table.items():
        if handler_key == param:
            return client_key
    return param
