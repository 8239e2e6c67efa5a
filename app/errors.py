"""Every failure leaves in its route's dialect, from this one place: OpenAI's error body under
/v1, OpenRouter's under /api/v1 (its SDK reads ``code`` as the HTTP status), the native
envelope under /api/v1/client/.

``GatewayError`` subclasses carry status, type, code and param; the exception handlers
below also turn Litestar's own errors (router 404/405, 413, validation) into the same shape.
Failures that a retry would only repeat carry ``x-should-retry: false`` so the openai SDK
never starts the same GPU job three times.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from typing import Any

import msgspec
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.exceptions import (
    NotAuthorizedException as LitestarNotAuthorized,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

log = structlog.get_logger("dryapi.errors")

ECHO_CHARS = 64
_MESSAGE_CHARS = 2048
_LOGGED_MESSAGE_CHARS = 300
_STACK_FRAMES = 30


def echo(value: object, limit: int = ECHO_CHARS) -> str:
    """``value`` as it may appear in an error message: a client string is cut to ``limit`` chars."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(msgspec.Struct):
    error: ErrorDetail


class GatewayError(Exception):
    status_code: int = 500
    error_type: str = "server_error"
    default_code: str | None = None
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        self.headers = dict(headers or {})

    def body(self) -> ErrorBody:
        # The last guard against echoing a huge client value back whole.
        message = echo(self.message, _MESSAGE_CHARS)
        param = echo(self.param, ECHO_CHARS * 4) if self.param else self.param
        return ErrorBody(ErrorDetail(message, self.error_type, param, self.code))

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if not self.retryable:
            headers.setdefault("x-should-retry", "false")
        return headers


class InvalidRequest(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"
    default_code = "invalid_value"


class AuthenticationFailed(GatewayError):
    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status_code = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class NotFound(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class ModelNotFound(NotFound):
    default_code = "model_not_found"


class PayloadTooLarge(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "payload_too_large"


class RateLimited(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"
    retryable = True

    def __init__(self, message: str, *, retry_after_s: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers["Retry-After"] = str(max(1, retry_after_s))


class Unavailable(GatewayError):
    """503: the gateway cannot serve this now; ``Retry-After`` always set."""

    status_code = 503
    error_type = "server_error"
    default_code = "service_unavailable"
    retryable = True

    def __init__(self, message: str, *, retry_after_s: int = 5, retryable: bool = True, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retryable = retryable
        self.headers["Retry-After"] = str(max(1, retry_after_s))


class MissingEndpoint(Unavailable):
    default_code = "missing_endpoint_id"

    def __init__(self, surface: str) -> None:
        super().__init__(f"No RunPod endpoint configured for surface {surface}", retryable=False)


class UpstreamError(GatewayError):
    """502: the worker or RunPod failed; the message is the upstream's."""

    status_code = 502
    error_type = "server_error"
    default_code = "upstream_error"


class UpstreamTimeout(GatewayError):
    status_code = 504
    error_type = "server_error"
    default_code = "upstream_timeout"
    retryable = False


def error_response(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(body),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers or {},
    )


def gateway_error_response(exc: GatewayError) -> Response[bytes]:
    return error_response(exc.status_code, exc.body(), exc.response_headers())


_KEY_PATH = re.compile(r"^(?:data\.)?(?P<field>.+)$")


def _validation_param(exc: ValidationException) -> tuple[str | None, str]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict):
            key = item.get("key")
            message = str(item.get("message", exc.detail))
            param = _KEY_PATH.sub(r"\g<field>", str(key)) if key else None
            return param, message
    return None, str(exc.detail)


def handle_gateway_error(request: Request[Any, Any, Any], exc: GatewayError) -> Response[bytes]:
    return render(request, exc)


# Litestar's 500 for a body the client stopped sending (gone, or cut off by the server's body
# timeout): the client's doing, and nobody is left to read the answer; counted as a 400.
_CLIENT_GONE = "client disconnected prematurely"


def http_error(exc: HTTPException) -> GatewayError:
    """Litestar's own errors (router 404/405, 413, validation) as the gateway's."""
    status = exc.status_code
    if status == 500 and exc.detail == _CLIENT_GONE:
        return InvalidRequest("The request body ended early", code="client_disconnected")
    if isinstance(exc, ValidationException):
        param, message = _validation_param(exc)
        return InvalidRequest(f"{message} ({param})" if param else message, param=param)
    if status == 413:
        return PayloadTooLarge("Request body too large")
    if isinstance(exc, NotFoundException) or status == 404:
        return NotFound(str(exc.detail) or "Not found", code="not_found")
    if status == 405:
        err = GatewayError(str(exc.detail) or "Method not allowed")
        err.status_code, err.error_type, err.code = 405, "invalid_request_error", "method_not_allowed"
        return err
    if isinstance(exc, LitestarNotAuthorized) or status == 401:
        return AuthenticationFailed(str(exc.detail))
    if isinstance(exc, PermissionDeniedException) or status == 403:
        return PermissionDenied(str(exc.detail))
    if status == 400:
        return InvalidRequest(str(exc.detail) or "Bad request")
    err = GatewayError(str(exc.detail))
    err.status_code = status
    err.error_type = "invalid_request_error" if status < 500 else "server_error"
    return err


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    return render(request, http_error(exc))


# The project root (where ``app/`` lives) first: an editable install is not on sys.path.
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _short_path(filename: str) -> str:
    """A frame's file relative to its import root (``app/auth.py``, ``litestar/routes/http.py``)."""
    best = ""
    for root in (_PROJECT_ROOT, *sys.path):
        if root and filename.startswith(root.rstrip(os.sep) + os.sep) and len(root) > len(best):
            best = root.rstrip(os.sep) + os.sep
    return filename[len(best) :] if best else os.path.basename(filename)


def stack_of(exc: BaseException) -> list[str]:
    """``file:line in function`` for each frame, innermost last: no locals, no source text."""
    frames = traceback.extract_tb(exc.__traceback__)[-_STACK_FRAMES:]
    return [f"{_short_path(frame.filename)}:{frame.lineno} in {frame.name}" for frame in frames]


def describe_unhandled(exc: BaseException, scope: Any) -> dict[str, Any]:
    """The fields of an ``unhandled_error`` line: enough to find the bug, nothing of the request.

    The type, a bounded message and the frames; the route template, never the raw path
    (callback nonces and ids travel in paths); no locals, bodies or headers.
    """
    cause = exc.__cause__ or exc.__context__
    return {
        "error_type": type(exc).__name__,
        "error_message": echo(exc, _LOGGED_MESSAGE_CHARS),
        "stack": stack_of(exc),
        "cause_type": type(cause).__name__ if cause is not None else None,
        "route": scope.get("path_template") or "<unmatched>",
        "method": scope.get("method"),
    }


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("unhandled_error", **describe_unhandled(exc, request.scope))
    err = GatewayError("Internal server error", code="internal_error")
    err.status_code = HTTP_500_INTERNAL_SERVER_ERROR
    return render(request, err)


# The native task API (design.md §6) ----------------------------------------------------------

NATIVE_PREFIX = "/api/v1/client/"
_NATIVE_MESSAGES = {401: "Unauthorized user.", 422: "Validation failed", 429: "Too Many Attempts."}


class FieldsInvalid(InvalidRequest):
    """Several bad fields at once (the native 422 lists every one); ``errors`` is
    ``[(field, message), ...]``. On /v1 routes it reads as one 400 naming the first field."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        field, message = errors[0] if errors else ("body", "The request is invalid")
        super().__init__(message, param=field)
        self.errors = errors or [(field, message)]


def native_error_response(exc: GatewayError) -> Response[bytes]:
    """The seeds' envelope: ``{"data": null, "message", "errors": [{"field", "messages"}],
    "statusCode"}``; a bad field is a 422, and so is an unknown model (reference §1.8)."""
    status = exc.status_code
    entries: list[tuple[str, str]] = []
    if isinstance(exc, FieldsInvalid):
        entries, status = exc.errors, 422
    elif isinstance(exc, ModelNotFound):
        entries, status = [("model", "The selected model does not exist.")], 422
    elif status == 400:
        entries, status = [(exc.param or "body", exc.message)], 422
    grouped: dict[str, list[str]] = {}
    for field, message in entries:
        grouped.setdefault(echo(field, ECHO_CHARS * 4), []).append(echo(message, _MESSAGE_CHARS))
    message = _NATIVE_MESSAGES.get(status) or echo(exc.message, _MESSAGE_CHARS)
    if status == 404 and exc.code == "job_not_found":
        message = "Request not found."
    body = {
        "data": None,
        "message": message,
        "errors": [{"field": field, "messages": messages} for field, messages in grouped.items()],
        "statusCode": status,
    }
    return Response(
        content=msgspec.json.encode(body),
        status_code=status,
        media_type=MediaType.JSON,
        headers=exc.response_headers(),
    )


# OpenRouter's layout (https://openrouter.ai/api/v1): the OpenAI routes mirrored, plus its own.
OPENROUTER_PREFIX = "/api/v1/"


# OpenRouter's canonical error types (``metadata.error_type``) by HTTP status.
_OPENROUTER_TYPES = {400: "invalid_request", 401: "authentication", 402: "payment_required", 403: "permission_denied",
                     404: "not_found", 413: "payload_too_large", 422: "unprocessable", 429: "rate_limit_exceeded",
                     502: "provider_unavailable", 503: "provider_unavailable", 504: "timeout"}


def _openrouter_type(status: int) -> str:
    return _OPENROUTER_TYPES.get(status) or ("server" if status >= 500 else "unmapped")


def openrouter_body(exc: GatewayError) -> dict[str, Any]:
    """OpenRouter's error: ``code`` is the HTTP status (its SDK picks the typed error by it);
    the gateway's string code, type and param travel in ``metadata``. ``type`` and ``param`` also
    stay beside ``code``, where the openai SDK (pointed at /api/v1 too) reads them."""
    detail = exc.body().error
    return {
        "error": {
            "code": exc.status_code,
            "message": detail.message,
            "metadata": {
                "code": detail.code,
                "type": detail.type,
                "param": detail.param,
                "error_type": _openrouter_type(exc.status_code),
            },
            "type": detail.type,
            "param": detail.param,
        }
    }


def openrouter_error_response(exc: GatewayError) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(openrouter_body(exc)),
        status_code=exc.status_code,
        media_type=MediaType.JSON,
        headers=exc.response_headers(),
    )


def is_openrouter_path(path: str) -> bool:
    return path.startswith(OPENROUTER_PREFIX) and not path.startswith(NATIVE_PREFIX)


def render(request: Request[Any, Any, Any], exc: GatewayError) -> Response[bytes]:
    """The error in the dialect of the route that failed: the seeds' native envelope under
    ``/api/v1/client/``, OpenRouter's under the rest of ``/api/v1/``, OpenAI's everywhere else."""
    path = str(request.scope.get("path", ""))
    if path.startswith(NATIVE_PREFIX):
        return native_error_response(exc)
    if path.startswith(OPENROUTER_PREFIX):
        return openrouter_error_response(exc)
    response = gateway_error_response(exc)
    raw_path = request.scope.get("raw_path") or b""
    if exc.status_code == 401 and (path.startswith("/mcp") or bytes(raw_path).startswith(b"/mcp")):
        # The MCP authorization spec: where an OAuth client learns how to get a token.
        base = request.app.state.services.settings.public_url.rstrip("/")
        response.headers["www-authenticate"] = f'Bearer resource_metadata="{base}/.well-known/oauth-protected-resource"'
    return response


EXCEPTION_HANDLERS: dict[Any, Any] = {
    GatewayError: handle_gateway_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
