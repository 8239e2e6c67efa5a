"""The JSON bodies RunPod answers with, built from job records."""

from __future__ import annotations

from typing import Any

import msgspec

from app.emulator.store import Job, JobStatus

encode = msgspec.json.encode


def status_body(job: Job, *, with_input: bool = False) -> dict[str, Any]:
    """``/status/{id}`` (and the webhook payload, which also carries ``input``).

    While IN_PROGRESS the latest progress value, if any, is the ``output``.
    """
    body: dict[str, Any] = {
        "id": job.id,
        "status": job.status.value,
        "delayTime": job.delay_ms,
        "executionTime": job.execution_ms,
        "retries": job.retries,
    }
    if job.worker_id is not None:
        body["workerId"] = job.worker_id
    if with_input:
        body["input"] = job.input
    if job.status is JobStatus.IN_PROGRESS:
        if job.progress is not None:
            body["output"] = job.progress
    elif job.output is not None:
        body["output"] = job.output
    if job.error is not None:
        body["error"] = job.error
    return body


def short_body(job: Job) -> dict[str, Any]:
    """What /run, /cancel and /retry answer, and /runsync while the job is not done."""
    return {"id": job.id, "status": job.status.value}


def stream_body(job: Job) -> dict[str, Any]:
    """``/stream/{id}``: the chunks not yet returned, each once."""
    return {"status": job.status.value, "stream": [{"output": piece} for piece in job.take_stream()]}
