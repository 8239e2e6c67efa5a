"""Browser access: ``DRYAPI_CORS_ORIGINS`` (comma-separated; none by default).

HTTP routes get Litestar's CORS handling (preflights answered before auth, no cookies:
clients authenticate with bearer keys). WebSockets have no CORS, so the handshake's
``Origin`` is checked here: allowed are clients that send none (SDKs, servers), the
gateway's own origin, and the configured ones. ``*`` allows every origin.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from litestar.config.cors import CORSConfig
from litestar.types import Scope

from app.scope import scope_header

# What a browser client may read from responses besides the CORS-safelisted headers.
EXPOSED_HEADERS = [
    "x-request-id",
    "location",
    "retry-after",
    "x-should-retry",
    "idempotent-replayed",
    "x-dryapi-job-id",
    "content-disposition",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
]


def parse_origins(raw: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(o.strip().rstrip("/") for o in (raw or "").split(",") if o.strip()))


def cors_config(origins: Iterable[str]) -> CORSConfig | None:
    allowed = list(origins)
    if not allowed:
        return None
    return CORSConfig(
        allow_origins=allowed,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
        allow_credentials=False,
        max_age=600,
    )


def websocket_origin_allowed(scope: Scope, origins: tuple[str, ...]) -> bool:
    origin = scope_header(scope, b"origin")
    if origin is None:
        return True
    origin = origin.rstrip("/")
    if "*" in origins or origin in origins:
        return True
    host = scope_header(scope, b"host")
    parts = urlsplit(origin)
    return bool(host) and parts.netloc.lower() == (host or "").lower()
