"""A job's status in the native vocabulary (``GET /api/v1/client/request-status/{id}``).

IN_QUEUE → pending, IN_PROGRESS → processing, COMPLETED → done, anything that failed → error;
``progress`` is always a number (the seeds' SDK rejects null) and ``result_url`` stays null
until the job is done, because clients poll until it exists (reference §1.5-1.6).
"""

from __future__ import annotations

from typing import Any

STATUS = {"IN_QUEUE": "pending", "IN_PROGRESS": "processing", "COMPLETED": "done"}


def _progress(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return round(min(100.0, max(0.0, float(value))), 2)


def native_status(body: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` of a request-status answer, from the engine's status body of the job."""
    status = STATUS.get(str(body.get("status")), "error")
    data: dict[str, Any] = {
        "status": status,
        "progress": 100.0 if status == "done" else _progress(body.get("progress")),
        "preview": body.get("preview") if isinstance(body.get("preview"), str) else None,
        "result_url": None,
        "results_alt_formats": None,
        "result": None,
    }
    output = body.get("output")
    if status == "done" and isinstance(output, dict):
        data["result_url"] = output.get("result_url")
        data["results_alt_formats"] = output.get("results_alt_formats")
        data["result"] = output.get("result")
    if status == "error":
        error = body.get("error")
        data["error"] = str(error.get("message")) if isinstance(error, dict) else "The job failed"
        if isinstance(error, dict) and error.get("code"):
            data["error_code"] = error["code"]
    return data
