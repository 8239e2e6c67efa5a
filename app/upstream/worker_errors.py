"""Normalise the many ways a RunPod worker or RunPod itself reports failure.

Our handlers return (or yield) ``{"error": "<JSON of {"type", "code", "message", "param"}>"}``;
the runpod SDK passes a returned error through as is, turns a *yielded* error into
``str(error)`` (a Python repr when a worker yields a dict, as stock worker-vllm does), a
raised exception into a JSON-encoded string, and an exception inside a generator into
``"handler: <message> \ntraceback: ..."``. worker-infinity answers ``{"object": "error", ...}``
as the *output* of a COMPLETED job; others send plain strings or lists. Every encoded form
is decoded back to the structure it carries: a worker's ``invalid_request_error`` becomes
our 400 however it travelled; anything else a 502.
"""

from __future__ import annotations

import ast
from typing import Any

import msgspec

from app.errors import GatewayError, InvalidRequest, Unavailable, UpstreamError

_MAX_MESSAGE = 2000
_MAX_REPR = 20_000  # longer "repr" strings are not parsed (literal_eval cost grows with size)
_GENERATOR_TRACEBACK = " \ntraceback: "  # rp_job.run_job_generator's separator


def _decode_structured(text: str) -> Any:
    """The JSON (or Python-literal repr) value ``text`` encodes, else None."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        pass
    if len(text) > _MAX_REPR:
        return None
    try:  # literal_eval evaluates literals only: no names, calls or attribute access
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict | list) else None


def _without_traceback(text: str) -> str:
    """An exception in a generator handler (``handler: ...``): its message, never the traceback."""
    if text.startswith("handler: "):
        return text.removeprefix("handler: ").split(_GENERATOR_TRACEBACK, 1)[0].strip()
    return text


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."


def worker_error(error: Any) -> GatewayError:
    """The client-facing error for a FAILED job's ``error`` (or an error-shaped output)."""
    if isinstance(error, str):
        text = error.strip()
        if text.startswith(("{", "[")):
            decoded = _decode_structured(text)
            if decoded is not None:
                return worker_error(decoded)
        return UpstreamError(_clip(_without_traceback(text)) or "The worker failed without a message",
                             code="worker_error")
    if isinstance(error, list):
        parts = [worker_error(item).message for item in error] or ["The worker failed"]
        return UpstreamError(_clip("; ".join(parts)), code="worker_error")
    if isinstance(error, dict):
        if error.get("error"):
            return worker_error(error["error"])
        if "error_message" in error:  # runpod SDK: a handler raised
            kind = str(error.get("error_type", "")).strip("<>").replace("class ", "").strip("'")
            message = f"{kind}: {error['error_message']}" if kind else str(error["error_message"])
            return UpstreamError(_clip(message), code="worker_exception")
        raw_message = error.get("message")
        if isinstance(raw_message, str) and raw_message.lstrip().startswith("{"):
            # RunPod's OpenAI route wraps a FAILED job's error string as the message
            inner = _decode_structured(raw_message.strip())
            if isinstance(inner, dict) and ("type" in inner or "error" in inner or "error_message" in inner):
                return worker_error(inner)
        # RunPod's stream relays a generator's exception as such a message, traceback included.
        message = _clip(_without_traceback(str(raw_message or error.get("detail") or "The worker failed")))
        error_type = error.get("type")
        code = error.get("code")
        if error_type == "invalid_request_error" or (error.get("object") == "error" and code in (400, 422, "400")):
            param = error.get("param")
            return InvalidRequest(message, param=str(param) if param else None, code=str(code or "invalid_value"))
        return UpstreamError(message, code=str(code) if isinstance(code, str) else "worker_error")
    return UpstreamError("The worker failed", code="worker_error")


def output_error(output: Any) -> GatewayError | None:
    """An error reported as the output of a COMPLETED job (worker-infinity style)."""
    if isinstance(output, list) and len(output) == 1:
        output = output[0]
    if isinstance(output, dict) and (output.get("object") == "error" or "error" in output):
        return worker_error(output)
    return None


def error_from_status(status: int, body: bytes, retry_after: str | None = None) -> GatewayError:
    """An HTTP failure from RunPod's API (not from the worker's own output)."""
    detail: Any = None
    try:
        detail = msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        detail = body.decode("utf-8", "replace")[:500] if body else None
    if status == 429:
        wait = int(retry_after) if retry_after and retry_after.isdigit() else 5
        return Unavailable("RunPod is rate limiting this endpoint; try again shortly", retry_after_s=wait)
    if status in (401, 403):
        return UpstreamError("RunPod rejected the gateway's API key (check RUNPOD_API_KEY)", code="upstream_auth")
    if status == 404:
        return UpstreamError("RunPod endpoint or job not found upstream", code="upstream_not_found")
    if isinstance(detail, dict) and "error" in detail:
        return worker_error(detail)
    message = f"RunPod answered HTTP {status}"
    if isinstance(detail, str) and detail:
        message += f": {_clip(detail)}"
    err: GatewayError = UpstreamError(message, code="upstream_error")
    err.retryable = status in (502, 503)
    return err
