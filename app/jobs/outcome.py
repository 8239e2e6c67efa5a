"""What a finished RunPod job comes to: its output, or the error it stands for.

Every path that meets a terminal status uses this one module, so a job means the same thing
however a client follows it: the sync runner (raised as the HTTP error), the async tracker
(the job body's ``error`` and the ``job.failed`` webhook), downloads, usage counting and
transcript rendering (``unwrap``).

Codes: an error body's ``code`` is lower case on every ``/v1`` route, so a job that ran out
of time is ``worker_timeout`` (the seeds' ``WORKER_TIMEOUT``, in the error body's style) and
a cancelled one ``job_cancelled``, sync and async alike; the ``job.failed`` webhook's
``error_code`` keeps the seeds' upper-case vocabulary (``webhook_error_code``).
"""

from __future__ import annotations

from typing import Any

from app.errors import GatewayError, UpstreamError, UpstreamTimeout
from app.upstream.worker_errors import output_error, worker_error

TIMEOUT_CODE = "worker_timeout"
CANCELLED_CODE = "job_cancelled"
EMPTY_OUTPUT_CODE = "empty_output"
# The seeds' webhook vocabulary for the codes that have a word of their own there.
_WEBHOOK_CODES = {TIMEOUT_CODE: "WORKER_TIMEOUT", CANCELLED_CODE: "CANCELLED"}


def unwrap(output: Any) -> Any:
    """The one unwrap rule: RunPod aggregates what a handler yields into a list, so a list of
    exactly one object is that object. Anything else (a list of stream pieces, of several
    objects, a string) is the output as it is."""
    if isinstance(output, list) and len(output) == 1 and isinstance(output[0], dict):
        return output[0]
    return output


def job_error(result: dict[str, Any], job_id: str) -> GatewayError | None:
    """None for a COMPLETED job with a usable output; otherwise the client-facing error.

    ``result`` is a terminal status body from RunPod (``/status``, ``/runsync`` or the callback).
    """
    status = result.get("status")
    if status == "COMPLETED":
        output = result.get("output")
        if output is None:
            return UpstreamError(
                f"Job {job_id} completed without output (the result may exceed RunPod's payload limit)",
                code=EMPTY_OUTPUT_CODE,
            )
        return output_error(unwrap(output))  # a worker that reports failure as its output
    if status == "FAILED":
        return worker_error(result.get("error"))
    if status == "TIMED_OUT":
        return UpstreamTimeout(f"Job {job_id} exceeded its execution timeout", code=TIMEOUT_CODE)
    return UpstreamError(f"Job {job_id} was cancelled", code=CANCELLED_CODE)


def job_output(result: dict[str, Any], job_id: str) -> Any:
    """The raw output of a COMPLETED job; raises the error any other outcome stands for."""
    error = job_error(result, job_id)
    if error is not None:
        raise error
    return result["output"]


def error_body(error: GatewayError) -> dict[str, Any]:
    """The ``error`` object of a failed job's body: the same fields as the HTTP error body."""
    return {"message": error.message, "type": error.error_type, "param": error.param, "code": error.code}


def webhook_error_code(error: dict[str, Any]) -> str:
    """A failed job's ``error_code`` in the ``job.failed`` webhook, in the seeds' vocabulary."""
    code = error.get("code")
    if code in _WEBHOOK_CODES:
        return _WEBHOOK_CODES[str(code)]
    if error.get("type") == "invalid_request_error":
        return "CONTEXT_LENGTH_EXCEEDED" if code == "context_length_exceeded" else "INVALID_INPUT"
    return "PROCESSING_ERROR" if error else "UNKNOWN_ERROR"
