"""HTTP plumbing shared by the emulator's routes: errors, auth, JSON responses, lookups."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers import BaseRouteHandler

from app.emulator.service import Emulator
from app.emulator.store import Job

JSON = "application/json"
log = logging.getLogger("app.emulator")


class EmulatorError(Exception):
    """An error answered as ``{"error": message}`` with ``status_code``."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def json_response(body: Any, status_code: int = 200) -> Response[bytes]:
    return Response(content=msgspec.json.encode(body), status_code=status_code, media_type=JSON)


def error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if isinstance(exc, EmulatorError):
        return json_response({"error": exc.message}, exc.status_code)
    if isinstance(exc, HTTPException):  # Litestar's own: unknown route, 405, 413, ...
        return json_response({"error": exc.detail}, exc.status_code)
    log.error("emulator: unhandled %s on %s", type(exc).__name__, request.url.path, exc_info=exc)
    return json_response({"error": "internal emulator error"}, 500)


def require_api_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """RunPod accepts the bare key or ``Bearer <key>`` in ``Authorization``."""
    expected: str | None = connection.app.state.emulator_api_key
    if expected is None:
        return
    given = connection.headers.get("authorization", "").strip()
    if given[:7].lower() == "bearer ":
        given = given[7:].strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise EmulatorError(401, "unauthorized: send the API key in the Authorization header")


def emulator_for(request: Request[Any, Any, Any], endpoint_id: str) -> Emulator:
    """The emulator, after checking that it serves ``endpoint_id``."""
    emulator: Emulator = request.app.state.emulator
    if endpoint_id not in emulator.runners:
        raise EmulatorError(404, f"endpoint not found: {endpoint_id}")
    return emulator


def job_for(emulator: Emulator, endpoint_id: str, job_id: str) -> Job:
    job = emulator.get(endpoint_id, job_id)
    if job is None:
        raise EmulatorError(404, "job not found")
    return job


def decode_body(raw: bytes, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise EmulatorError(400, f"invalid request body: {exc}") from None
    except msgspec.DecodeError:
        raise EmulatorError(400, "the request body must be JSON") from None


def is_object(raw: msgspec.Raw) -> bool:
    return bytes(raw).lstrip()[:1] == b"{"
