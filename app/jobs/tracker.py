"""What happens when the gateway learns a job's status, however it learned it.

The watcher's polls, RunPod's callback and a client's GET all call ``observe``. A change of
status is an event once per job, however many readers see it at once: the one process that
claims the step in Redis updates the record, publishes it to every WebSocket watcher (Redis
pub/sub) and sends the client's webhook. A terminal status is finalised exactly once (claimed
the same way) and its OpenAI-shaped result kept for ``DRYAPI_RESULT_TTL_S``.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
import structlog

from app import usage
from app.billing import charge as billing
from app.errors import GatewayError
from app.jobs.outcome import error_body, job_error, webhook_error_code
from app.jobs.records import TERMINAL_STATUSES, JobRecord
from app.metrics import JOBS
from app.services import Services

log = structlog.get_logger("dryapi.jobs")

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode

WEBHOOK_STATUS = {"IN_QUEUE": "pending", "IN_PROGRESS": "processing", "COMPLETED": "done"}
_FINAL_WAIT_S = 5.0
_CLAIM_TTL_S = 86_400  # longer than any job runs: a step is announced once
SEEN_TTL_S = 5  # the poller's last body outlives a few polls, not a stalled poller


class Outbox(Protocol):
    async def enqueue(self, *, key_id: str, url: str, event: str, data: dict[str, Any]) -> str: ...


class Broadcaster(Protocol):
    """Where a job's realtime events go (``app/realtime``): Redis for the built-in Pusher
    server, or an external Pusher server's HTTP API."""

    async def broadcast(self, owner: str, event: dict[str, Any]) -> None: ...


# The seed's realtime statuses (reference §6, §9.3): a queued job sends nothing; its start is
# "processing" (once), each new progress "in_progress"; every failure is "error".
REALTIME_STATUS = {"IN_PROGRESS": "in_progress", "COMPLETED": "done"}


def _iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts or time.time(), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def progress_text(value: Any) -> str:
    """A progress value as the seed's two-decimal percentage string ("45.50")."""
    number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
    return f"{max(0.0, min(100.0, number)) if math.isfinite(number) else 0.0:.2f}"


def progress_body(record: JobRecord, raw: dict[str, Any]) -> dict[str, Any]:
    """A non-terminal status as clients see it: never RunPod's ``input`` echo."""
    body: dict[str, Any] = {
        "id": record.id,
        "status": raw.get("status", record.status),
        "delayTime": raw.get("delayTime", 0),
        "executionTime": raw.get("executionTime", 0),
    }
    output = raw.get("output")
    if isinstance(output, dict) and "progress" in output:
        body["progress"] = output["progress"]
        if isinstance(output.get("preview"), str):  # a data URI or URL of the work so far
            body["preview"] = output["preview"]
    return body


class JobTracker:
    def __init__(self, services: Services, outbox: Outbox | None, broadcaster: Broadcaster | None = None) -> None:
        self._services = services
        self._outbox = outbox
        self._broadcaster = broadcaster
        self._keys = services.keys
        # The link a realtime "done" event carries; swap it for a file link where there is one.
        self.realtime_result_url = self.result_url

    # Redis names -------------------------------------------------------------------------

    def result_key(self, job_id: str) -> str:
        return self._keys.job_result(job_id)

    def channel(self, job_id: str) -> str:
        return self._keys.job_events(job_id)

    # reading -----------------------------------------------------------------------------

    async def stored_result(self, job_id: str) -> dict[str, Any] | None:
        raw = await self._services.redis.get(self.result_key(job_id))
        result: dict[str, Any] | None = _decode(raw) if raw else None
        return result

    async def last_seen(self, job_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(kept result, the poller's last status body), in one round trip: what a new
        watcher is shown without asking RunPod again."""
        async with self._services.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.result_key(job_id))
            pipe.get(self._keys.job_seen(job_id))
            result, seen = await pipe.execute()
        return (_decode(result) if result else None), (_decode(seen) if seen else None)

    # observing ---------------------------------------------------------------------------

    async def observe(
        self, record: JobRecord, raw: dict[str, Any], *, chunks: list[Any] | None = None, remember: bool = False
    ) -> dict[str, Any]:
        """Record what RunPod says about ``record``'s job; return the client-facing body.

        ``remember``: the poller's look, kept for watchers that open next (``last_seen``).
        """
        status = str(raw.get("status", record.status))
        if status in TERMINAL_STATUSES:
            return await self.finalize(record, raw)
        body = progress_body(record, raw)
        previous = record.status
        announce = status != previous and await self._claim_step(record.id, status)
        progressed = False  # a new progress value of a running job: a realtime event of its own
        if announce and status == "IN_PROGRESS":
            await self._progress_moved(record.id, body)  # before the status is saved: see below
        elif not announce and status == previous == "IN_PROGRESS":
            progressed = await self._progress_moved(record.id, body)
        if remember or announce:
            # Before the publish: a watcher that subscribes meanwhile then reads this body or gets the frame.
            await self._services.redis.set(self._keys.job_seen(record.id), _encode(body), ex=SEEN_TTL_S)
        if announce:
            record.status = status
            await self._services.jobs.set_status(record.id, status)
            if status == "IN_PROGRESS":
                await self._webhook(record, "job.processing", previous, {"started_at": _iso()})
        if announce or chunks:
            await self.publish(record.id, body | ({"stream": chunks} if chunks else {}))
        if announce and status == "IN_PROGRESS":
            await self.broadcast(record, {"status": status}, started=True)  # "processing": a worker has it
        if announce or progressed:
            await self.broadcast(record, body, raw.get("output"))
        return body

    async def _claim_step(self, job_id: str, status: str) -> bool:
        """True for the one caller, across every replica, that announces ``job_id`` reaching ``status``."""
        claim = self._keys.job_step_claim(job_id, status)
        return bool(await self._services.redis.set(claim, b"1", nx=True, ex=_CLAIM_TTL_S))

    async def _progress_moved(self, job_id: str, body: dict[str, Any]) -> bool:
        """Records the job's progress; True for the one caller that saw it change.

        Only readers that already know the job is running ask, and the one that announced it
        running records its progress before saving that status, so the first value is never
        announced twice.
        """
        progress = body.get("progress")
        if not isinstance(progress, int | float) or isinstance(progress, bool):
            return False
        value = progress_text(progress).encode()
        old = await self._services.redis.set(self._keys.job_progress(job_id), value, ex=_CLAIM_TTL_S, get=True)
        return bool(old != value)

    async def publish(self, job_id: str, frame: dict[str, Any]) -> None:
        await self._services.redis.publish(self.channel(job_id), _encode(frame))

    async def finalize(self, record: JobRecord, raw: dict[str, Any]) -> dict[str, Any]:
        existing = await self.stored_result(record.id)
        if existing is not None:
            await billing.settle(self._services, record, existing)  # idempotent: a crash before it loses nothing
            return existing
        redis = self._services.redis
        claimed = await redis.set(self._keys.job_final_claim(record.id), b"1", nx=True, ex=300)
        if not claimed:
            # Already finalised (or being finalised) elsewhere: report it without side effects.
            deadline = time.monotonic() + (_FINAL_WAIT_S if self._services.settings.result_ttl_s > 0 else 0)
            while time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                existing = await self.stored_result(record.id)
                if existing is not None:
                    return existing
            body = await self._terminal_body(record, raw)
            await billing.settle(self._services, record, body)  # the claimer may have died before settling
            return body
        if record.stream:
            await self._flush_stream(record)
        body = await self._terminal_body(record, raw)
        await billing.settle(self._services, record, body)
        previous = record.status
        record.status = body["status"]
        JOBS.labels(surface=record.surface, status=record.status).inc()  # once per job: the final claim
        await self._store_result(record, body)
        usage.record_job(self._services, record, raw, body)  # once: this process holds the final claim
        await self._services.jobs.set_status(record.id, record.status)
        await self.publish(record.id, body)
        await self.broadcast(record, body)
        await self._final_webhook(record, previous, body)
        log.info("job_finished", job_id=record.id, surface=record.surface, status=record.status)
        return body

    async def _flush_stream(self, record: JobRecord) -> None:
        """Chunks RunPod still holds for watchers, sent before the terminal frame."""
        try:
            streamed = await self._services.client.stream(
                record.endpoint_url, self._services.upstream_api_key(), record.id
            )
        except GatewayError:
            return
        chunks = [item.get("output") for item in streamed.get("stream") or [] if isinstance(item, dict)]
        if chunks:
            await self.publish(record.id, {"id": record.id, "status": "IN_PROGRESS", "stream": chunks})

    async def _terminal_body(self, record: JobRecord, raw: dict[str, Any]) -> dict[str, Any]:
        body = progress_body(record, raw)
        body.pop("progress", None)
        status = str(raw.get("status"))
        error = job_error(raw, record.id)
        if error is None:
            try:
                body["output"] = await self._services.render_output(record, raw["output"])
            except GatewayError as exc:
                error = exc
        if error is not None:
            body["status"] = "FAILED" if status == "COMPLETED" else status
            body["error"] = error_body(error)
        return body

    async def _store_result(self, record: JobRecord, body: dict[str, Any]) -> None:
        ttl = self._services.settings.result_ttl_s
        if ttl > 0:
            await self._services.redis.set(self.result_key(record.id), _encode(body), ex=ttl)

    # realtime (Pusher) events ------------------------------------------------------------

    def _event(
        self, record: JobRecord, body: dict[str, Any], output: Any = None, *, started: bool = False
    ) -> dict[str, Any]:
        """The job's status as the seed's ``request.status.updated`` payload."""
        status = str(body.get("status"))
        preview = output.get("preview") if isinstance(output, dict) else None
        event: dict[str, Any] = {
            "request_id": record.id,
            "status": "processing" if started else REALTIME_STATUS.get(status, "error"),
            "preview": preview if isinstance(preview, str) else None,
            "result_url": self._realtime_link(record, body) if status == "COMPLETED" else None,
            "progress": progress_text(100 if status == "COMPLETED" else body.get("progress")),
        }
        if event["status"] == "error":
            error = body.get("error")
            event["error"] = str(error.get("message") if isinstance(error, dict) else f"job {status.lower()}")
        return event

    async def broadcast(
        self, record: JobRecord, body: dict[str, Any], output: Any = None, *, started: bool = False
    ) -> None:
        """The job's new status to its owner's realtime channel.

        Called once per status change (the caller holds the step's claim); a failure to
        broadcast never fails the job.
        """
        if self._broadcaster is None:
            return
        try:
            await self._broadcaster.broadcast(record.owner, self._event(record, body, output, started=started))
        except Exception as exc:
            log.warning("realtime_broadcast_failed", job_id=record.id, error_type=type(exc).__name__)

    def _realtime_link(self, record: JobRecord, body: dict[str, Any]) -> str:
        """The native dialect's own file link where its output has one, else the signed result."""
        output = body.get("output")
        link = output.get("result_url") if isinstance(output, dict) else None
        return link if isinstance(link, str) and link else self.realtime_result_url(record)

    # webhooks ----------------------------------------------------------------------------

    def result_url(self, record: JobRecord) -> str:
        settings = self._services.settings
        ttl = max(settings.result_ttl_s, 3600)
        expires, signature = self._services.signer.sign_expiring("result", record.id, ttl)
        return f"{settings.public_url}/v1/results/{record.id}?exp={expires}&sig={signature}"

    async def _final_webhook(self, record: JobRecord, previous: str, body: dict[str, Any]) -> None:
        if body["status"] == "COMPLETED":
            output = body.get("output")
            # A native job's link is to the file itself; a /v1 job's to its kept result body.
            file_url = output.get("result_url") if isinstance(output, dict) else None
            extra: dict[str, Any] = {"completed_at": _iso(), "result_url": file_url or self.result_url(record)}
            extra["processing_time_ms"] = int(body.get("executionTime") or 0)
            await self._webhook(record, "job.completed", previous, extra, status="done")
            return
        error = body.get("error") or {}
        code = webhook_error_code(error)
        message = str(error.get("message", ""))
        failed: dict[str, Any] = {"failed_at": _iso(), "error_code": code, "error_message": message}
        failed["processing_time_ms"] = int(body.get("executionTime") or 0)
        await self._webhook(record, "job.failed", previous, failed, status="error")

    async def _webhook(
        self, record: JobRecord, event: str, previous: str, extra: dict[str, Any], *, status: str = "processing"
    ) -> None:
        if not record.webhook_url or self._outbox is None:
            return
        data = {
            "job_request_id": record.id,
            "status": status,
            "previous_status": WEBHOOK_STATUS.get(previous, "processing"),
            "job_type": record.options.get("task", record.surface),  # native jobs: the task's name
            **extra,
        }
        await self._outbox.enqueue(key_id=record.owner, url=record.webhook_url, event=event, data=data)

