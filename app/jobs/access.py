"""Finding a job for a caller: only its owner and admin keys see it; everyone else gets 404.

Admin keys may also look up provider jobs the gateway did not enqueue (the reference's
"provider-agnostic" job routes): RunPod is asked through the surface's endpoint (or
``endpointId``) and its answer rendered like any job's, without recording anything.
"""

from __future__ import annotations

from typing import Any, cast

from app.auth import Principal
from app.errors import GatewayError, MissingEndpoint, NotFound
from app.jobs.records import TERMINAL_STATUSES, JobRecord
from app.jobs.tracker import JobTracker, progress_body
from app.jobs.watcher import JobWatcher
from app.routing.resolver import resolve
from app.routing.schema import SURFACES, Surface
from app.services import Services


def not_found(job_id: str) -> NotFound:
    # The same answer for "no such job" and "someone else's job": existence is not leaked.
    return NotFound(f"Job {job_id} was not found", code="job_not_found")


async def load_owned(
    services: Services,
    principal: Principal,
    surface: str,
    job_id: str,
    *,
    provider_lookup: bool = False,
    endpoint_url: str | None = None,
) -> JobRecord:
    """The caller's job; with ``provider_lookup``, an admin key also gets any provider job."""
    if surface not in SURFACES:
        raise not_found(job_id)
    record = await services.jobs.get(job_id)
    if record is None and provider_lookup and principal.admin:
        return provider_record(services, surface, job_id, endpoint_url)
    if record is None or record.surface != surface or not (principal.admin or record.owner == principal.key_id):
        raise not_found(job_id)
    return record


def provider_record(services: Services, surface: str, job_id: str, endpoint_url: str | None) -> JobRecord:
    """A transient record for a job on the surface's endpoint (or ``endpoint_url``) that the
    gateway has no record of."""
    if endpoint_url is None:
        try:
            route = resolve(
                services.routing.config, cast(Surface, surface), None, local_upstream=services.settings.local_upstream
            )
        except MissingEndpoint:  # no endpoint to ask: the job cannot be found there
            raise not_found(job_id) from None
        endpoint_url, model = route.endpoint_url, route.public_model
    else:  # the endpoint is named: the surface needs no route of its own
        surface_config = services.routing.config.surfaces.get(cast(Surface, surface))
        model = surface_config.default_model if surface_config and surface_config.default_model else surface
    return JobRecord(
        id=job_id,
        owner="",  # no owner: nothing is recorded, counted or delivered for it
        surface=surface,
        model=model,
        endpoint_id=endpoint_url.rstrip("/").rsplit("/", 1)[-1],
        endpoint_url=endpoint_url,
        created=0,
        nonce="",
    )


async def current_status(
    services: Services,
    tracker: JobTracker,
    watcher: JobWatcher,
    record: JobRecord,
    *,
    endpoint_url: str | None = None,
) -> dict[str, Any]:
    """The job's status body now: the kept result, or a fresh look at RunPod."""
    stored = await tracker.stored_result(record.id)
    if stored is not None:
        return stored
    if endpoint_url:
        record.endpoint_url = endpoint_url
    try:
        raw = await services.client.status(record.endpoint_url, watcher.api_key(), record.id)
    except GatewayError as exc:
        if exc.code == "upstream_not_found" and not record.owner:
            raise not_found(record.id) from None
        if exc.code == "upstream_not_found":
            expired = NotFound(f"Job {record.id} has expired; its result is no longer kept", code="job_expired")
            raise expired from None
        raise
    if not record.owner:
        return await _render_provider_job(tracker, record, raw)
    body = await tracker.observe(record, raw)
    if body["status"] in TERMINAL_STATUSES:
        await watcher.forget(record.id)
    return body


async def _render_provider_job(tracker: JobTracker, record: JobRecord, raw: dict[str, Any]) -> dict[str, Any]:
    """RunPod's status rendered like a gateway job's, with none of ``observe``'s side effects."""
    if str(raw.get("status")) in TERMINAL_STATUSES:
        return await tracker._terminal_body(record, raw)
    return progress_body(record, raw)


async def watch_status(
    services: Services, tracker: JobTracker, watcher: JobWatcher, record: JobRecord
) -> dict[str, Any]:
    """A new watcher's first frame, without a RunPod call of its own when the job is followed:
    the kept result, else the poller's last look, else the record's status. Polling is the
    watcher loop's job; a thousand sockets opening on one job must not poll it a thousand times.
    """
    if not record.owner:  # a provider job: nobody follows it
        return await current_status(services, tracker, watcher, record)
    stored, seen = await tracker.last_seen(record.id)
    if stored is not None:
        return stored
    if record.status in TERMINAL_STATUSES:
        return await current_status(services, tracker, watcher, record)  # finished, result not kept
    return seen if seen is not None else progress_body(record, {})
