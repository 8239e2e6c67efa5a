"""The request's outermost layer: request id, log context, metrics, access line, WS origin.

``RequestObserver`` wraps Litestar's whole ASGI handler (router, CORS, exception handling),
so 404s, preflights and auth failures are counted and logged like everything else. Metric
labels use the route template (``/v1/jobs/{surface}/{jobId}``), never the raw path, and
the access line never contains the query string (WebSocket keys travel there).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
from structlog.contextvars import bind_contextvars, clear_contextvars

from app.metrics import GATEWAY_OVERHEAD, REQUEST_DURATION, REQUESTS
from app.observability.cors import websocket_origin_allowed
from app.observability.logging import sane_request_id
from app.observability.shutdown import Drain, set_current_drain
from app.observability.timing import reset_clock, start_clock

log = structlog.get_logger("dryapi.access")

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_SURFACES = frozenset({"chat", "images", "transcribe", "embeddings"})
_PREFIXES = (
    ("/v1/chat/", "chat"),
    ("/v1/embeddings", "embeddings"),
    ("/v1/images/", "images"),
    ("/v1/audio/", "transcribe"),
)
UNMATCHED = "<unmatched>"


def surface_of(path: str) -> str | None:
    if path.startswith("/api/v1/"):  # the OpenAI routes' mirror (OpenRouter's layout)
        path = path[4:]
    for prefix, surface in _PREFIXES:
        if path.startswith(prefix):
            return surface
    if path.startswith("/v1/jobs/"):
        name = path[9:].split("/", 1)[0]
        return name if name in _SURFACES else None
    return None


def _request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id":
            sane = sane_request_id(value.decode("latin-1"))
            if sane:
                return sane
            break
    return uuid.uuid4().hex


def _begin(scope: Scope, drain: Drain) -> str:
    request_id = _request_id(scope)
    clear_contextvars()
    surface = surface_of(scope["path"])
    if surface:
        bind_contextvars(request_id=request_id, surface=surface)
    else:
        bind_contextvars(request_id=request_id)
    set_current_drain(drain)
    return request_id


class RequestObserver:
    def __init__(self, app: ASGIApp, drain: Drain, ws_origins: tuple[str, ...]) -> None:
        self.app = app
        self.drain = drain
        self.ws_origins = ws_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            await self._http(scope, receive, send)
        elif scope["type"] == ScopeType.WEBSOCKET:
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        request_id = _begin(scope, self.drain)
        clock, token = start_clock()
        id_header = (b"x-request-id", request_id.encode())
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}  # type: ignore[typeddict-item]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            now = time.perf_counter()
            elapsed = now - clock.started
            route = scope.get("path_template") or UNMATCHED
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            code = str(status or 500)
            REQUESTS.labels(route, method, code).inc()
            REQUEST_DURATION.labels(route, method, code).observe(elapsed)
            fields: dict[str, Any] = {
                "method": method,
                "route": route,
                "status": status or 500,
                "duration_ms": round(elapsed * 1000, 2),
            }
            if clock.calls:
                overhead = clock.overhead_s(now)
                GATEWAY_OVERHEAD.observe(overhead)
                fields["upstream_ms"] = round(clock.upstream_s * 1000, 2)
                fields["overhead_ms"] = round(overhead * 1000, 2)
            reset_clock(token)
            if (status or 500) >= 500:
                log.warning("request", **fields)
            else:
                log.info("request", **fields)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _begin(scope, self.drain)
        started = time.perf_counter()
        id_header = (b"x-request-id", request_id.encode())
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "websocket.accept":
                status = 101
                message = {**message, "headers": [*message.get("headers", ()), id_header]}  # type: ignore[typeddict-item]
            elif message["type"] == "websocket.close" and not status:
                status = 403  # closed before accepting: the server answers the handshake with 403
            await send(message)

        try:
            if websocket_origin_allowed(scope, self.ws_origins):
                await self.app(scope, receive, send_with_id)
            else:
                await receive()  # websocket.connect
                await send_with_id({"type": "websocket.close", "code": 1008, "reason": "origin not allowed"})
        finally:
            route = scope.get("path_template") or UNMATCHED
            log.info(
                "websocket",
                route=route,
                status=status or 500,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )


def bind_request_context(app: ASGIApp) -> ASGIApp:
    """Route-level middleware (after auth): puts the caller's key id and the job id in the log context."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        fields: dict[str, str] = {}
        key_id = getattr(scope.get("user"), "key_id", None)
        if key_id:
            fields["key_id"] = str(key_id)
        params = scope.get("path_params", {})
        job_id = params.get("jobId") or params.get("job_id")  # the jobs routes name it jobId
        if job_id:
            fields["job_id"] = str(job_id)
        if fields:
            bind_contextvars(**fields)
        await app(scope, receive, send)

    return middleware
