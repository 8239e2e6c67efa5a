"""The error responses the OpenRouter media routes document.

Loose on purpose: under /api/v1 the error body is OpenRouter's (``{"error": {"code", "message",
"metadata"}}``), rendered by ``app/errors.py``; the schema promises the ``error`` object only.
"""

from __future__ import annotations

from typing import Any

from litestar.openapi import ResponseSpec


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=dict[str, Any], description=description, generate_examples=False)


_COMMON = {
    400: _error("Invalid request; the error names the field (`param`)"),
    401: _error("Missing or wrong API key"),
    429: _error("Over the key's rate limit, or its balance; `Retry-After` says when to retry"),
}
SUBMIT_ERRORS: dict[int, ResponseSpec] = {
    **_COMMON,
    404: _error("Unknown model"),
    413: _error("The media is larger than the upload cap"),
    502: _error("The worker or RunPod failed"),
    503: _error("No endpoint configured for the surface, or the gateway cannot serve now"),
    504: _error("The job did not finish within the surface's `sync_timeout_s`"),
}
JOB_ERRORS: dict[int, ResponseSpec] = {
    **_COMMON,
    404: _error("Unknown job, another key's job, or a result no longer kept"),
    409: _error("The job has not completed yet"),
    502: _error("RunPod failed"),
}
