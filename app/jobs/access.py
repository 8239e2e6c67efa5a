"""Finding a job for a caller: only its owner and admin keys see it; everyone else gets 404."""

from __future__ import annotations

from typing import Any

from app.auth import Principal
from app.errors import GatewayError, NotFound
from app.jobs.records import TERMINAL_STATUSES, JobRecord
from app.jobs.tracker import JobTracker, progress_body
from app.jobs.watcher import JobWatcher
from app.routing.schema import SURFACES
from app.services import Services


def not_found(job_id: str) -> NotFound:
    # The same answer for "no such job" and "someone else's job": existence is not leaked.
    return NotFound(f"Job {job_id} was not found", code="job_not_found")


async def load_owned(services: Services, principal: Principal, surface: str, job_id: str) -> JobRecord:
    if surface not in SURFACES:
        raise not_found(job_id)
    record = await services.jobs.get(job_id)
    if record is None or record.surface != surface or not (principal.admin or record.owner == principal.key_id):
        raise not_found(job_id)
    return record


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
        if exc.code == "upstream_not_found":
            expired = NotFound(f"Job {record.id} has expired; its result is no longer kept", code="job_expired")
            raise expired from None
        raise
    body = await tracker.observe(record, raw)
    if body["status"] in TERMINAL_STATUSES:
        await watcher.forget(record.id)
    return body


async def watch_status(
    services: Services, tracker: JobTracker, watcher: JobWatcher, record: JobRecord
) -> dict[str, Any]:
    """A new watcher's first frame, without a RunPod call of its own when the job is followed:
    the kept result, else the poller's last look, else the record's status. Polling is the
    watcher loop's job; a thousand sockets opening on one job must not poll it a thousand times.
    """
    stored, seen = await tracker.last_seen(record.id)
    if stored is not None:
        return stored
    if record.status in TERMINAL_STATUSES:
        return await current_status(services, tracker, watcher, record)  # finished, result not kept
    return seen if seen is not None else progress_body(record, {})
