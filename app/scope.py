"""Reading a request straight from its ASGI scope.

Litestar's ``connection.headers`` and ``query_params`` build a map and cache it in the scope;
a WebSocket keeps its scope as long as it is open, so the paths every socket takes read the
raw values instead.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from litestar.types import Scope


def scope_header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case, as ASGI servers deliver names)."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def scope_query_param(scope: Scope, name: str) -> str | None:
    """The first value of query parameter ``name``."""
    raw = scope.get("query_string", b"")
    if not raw:
        return None
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if key == name:
            return value
    return None
