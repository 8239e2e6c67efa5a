"""The finished OpenAPI document: bearer security per operation, the reference's tags, ``/openapi.json``.

Litestar builds the document from the route decorators; this pass adds what spans every route
(which operations need the key, the top-level tag list) in one place instead of in each
module's decorators.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.openapi.spec import Components, OpenAPI, Operation, SecurityScheme

from app.docs.tags import (
    BEARER_AUTH,
    TAG_ADMIN,
    TAG_FILES,
    TAG_HEALTH,
    TAG_JOBS,
    TAG_OPENAI,
    TAG_RUNPOD,
    TAG_WEBHOOKS,
    TAGS,
)

# Short tags the route modules use, as the reference names their groups.
_TAG_NAMES = {
    "openai": TAG_OPENAI,
    "jobs": TAG_JOBS,
    "runpod": TAG_RUNPOD,
    "webhooks": TAG_WEBHOOKS,
    "admin": TAG_ADMIN,
    "files": TAG_FILES,
    "ops": TAG_HEALTH,
}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_BEARER = SecurityScheme(
    type="http", scheme="bearer", description="Use Authorization: Bearer <api-key>."
)


def _operations(openapi: OpenAPI) -> list[tuple[str, Operation]]:
    found: list[tuple[str, Operation]] = []
    for path, item in (openapi.paths or {}).items():
        for method in _METHODS:
            operation = getattr(item, method, None)
            if operation is not None:
                found.append((path, operation))
    return found


def finish_openapi(openapi: OpenAPI, *, public_paths: str) -> None:
    """Name the bearer scheme on every operation outside ``public_paths`` (a regex); tag as the reference does."""
    public = re.compile(public_paths)
    components = openapi.components if isinstance(openapi.components, Components) else Components()
    components.security_schemes = {**(components.security_schemes or {}), BEARER_AUTH: _BEARER}
    openapi.components = components
    openapi.tags = list(TAGS)
    for path, operation in _operations(openapi):
        operation.security = [] if public.match(path) else [{BEARER_AUTH: []}]
        operation.tags = [_TAG_NAMES.get(tag, tag) for tag in operation.tags or []] or None


@get("/openapi.json", include_in_schema=False, exclude_from_auth=True, sync_to_thread=False)
def openapi_json(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The same document as ``/schema/openapi.json``, where most tools look for it first."""
    state = request.app.state
    cached: bytes | None = state.get("openapi_json")
    if cached is None:
        cached = msgspec.json.encode(request.app.openapi_schema.to_schema())
        state.openapi_json = cached
    return Response(content=cached, media_type="application/json")


__all__ = ["finish_openapi", "openapi_json"]
