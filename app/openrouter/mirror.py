"""Every OpenAI route under /v1 served again under /api/v1 (OpenRouter's layout).

A mirror is a shallow copy of the handler with the paths re-prefixed: the same function, guards
and middleware, so the two prefixes cannot drift. Mirrors stay out of the OpenAPI document (one
operation per route there); an explicit handler on a mirrored path (a media route OpenRouter
shapes differently) wins over the mirror.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from copy import copy
from typing import Any

OPENAI_PREFIX = "/v1/"
MIRROR_PREFIX = "/api"


_PARAM = re.compile(r"\{[^}:]+(?::([^}]+))?\}")


def _shape(path: str) -> str:
    """A path with its parameters' names dropped: two routes clash on their shapes."""
    return _PARAM.sub(lambda m: "{" + (m.group(1) or "str") + "}", path)


def mirror_paths(paths: Iterable[str]) -> set[str]:
    return {MIRROR_PREFIX + path for path in paths if path.startswith(OPENAI_PREFIX)}


def taken_paths(handlers: Iterable[Any]) -> set[str]:
    """The paths (with method, for HTTP) the explicit handlers already serve."""
    taken: set[str] = set()
    for handler in handlers:
        methods = getattr(handler, "http_methods", None) or {"*"}
        taken.update(f"{method} {_shape(path)}" for path in getattr(handler, "paths", ()) for method in methods)
    return taken


def mirrored(handlers: Iterable[Any], *, taken: set[str] | None = None) -> list[Any]:
    """A copy of each handler on its /api/v1 paths, minus those an explicit handler serves."""
    taken = taken or set()
    mirrors: list[Any] = []
    for handler in handlers:
        methods = getattr(handler, "http_methods", None) or {"*"}
        paths = {path for path in mirror_paths(handler.paths)
                 if not any(f"{method} {_shape(path)}" in taken for method in methods)}
        if not paths:
            continue
        mirror = copy(handler)
        mirror.paths = paths
        if hasattr(mirror, "include_in_schema"):  # HTTP handlers; WebSocket ones are never documented
            mirror.include_in_schema = False
        mirrors.append(mirror)
    return mirrors
