"""Trying a request's models in order, and each model's endpoints in order, until one serves.

A model is passed over when it is unknown, has no endpoint (or none the provider preferences
allow), or all its endpoints are cooling while later models remain. An attempt is abandoned
for the next endpoint (then the next model) only when it failed before any output reached the
client: RunPod or the worker answered 429 or 5xx, or did not answer in time. Anything else
(a 400 from the worker, a 402 from billing) is the request's own problem and is raised as is.
The dialect's ``attempt(route, last)`` decides what "before any output" means: for a stream it
returns once the upstream stream is open (and, unless ``last``: nothing could take over,
once its first event arrived), and nothing after that is retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from structlog.contextvars import bind_contextvars

from app.errors import GatewayError, Unavailable, UpstreamTimeout, echo
from app.metrics import ENDPOINT_CHOSEN, FALLBACKS
from app.routing.preferences import RoutingWishes
from app.routing.resolver import ModelRoutes, Route

T = TypeVar("T")
_FALLBACK_STATUSES = frozenset({429, 500, 502, 503})
_RESOLVE_REASONS = {"model_not_found": "unknown_model", "no_matching_endpoint": "no_matching_endpoint"}


def falls_back(exc: GatewayError, *, timeouts: bool) -> bool:
    """Whether the next endpoint/model may take over after ``exc``."""
    if isinstance(exc, UpstreamTimeout):
        # A sync job past its wait is still running upstream and is followed: never twice.
        return timeouts and exc.code != "job_timeout"
    return exc.status_code in _FALLBACK_STATUSES


def _reason(exc: GatewayError) -> str:
    if isinstance(exc, UpstreamTimeout):
        return "timeout"
    if exc.status_code == 429:
        return "upstream_429"
    return "unreachable" if "reach" in exc.message else "upstream_5xx"


async def serve_with_fallbacks(
    surface: str,
    wishes: RoutingWishes,
    resolve_model: Callable[[str | None], ModelRoutes],
    attempt: Callable[[Route, bool], Awaitable[T]],
    *,
    timeouts: bool = True,
) -> tuple[Route, T]:
    """The route that served and what ``attempt`` returned for it; else the last error."""
    last: GatewayError | None = None
    tried: list[str] = []
    count = len(wishes.models)
    for index, model in enumerate(wishes.models):
        try:
            routes = resolve_model(model)
        except GatewayError as exc:
            if count == 1:
                raise
            reason = _RESOLVE_REASONS.get(str(exc.code), "no_endpoint")
            FALLBACKS.labels(surface=surface, endpoint="-", reason=reason).inc()
            tried.append(echo(model or "default"))
            last = exc
            continue
        if routes.routes[0].public_model in tried:  # an alias of a model already tried
            continue
        tried.append(routes.routes[0].public_model)
        # Cooling endpoints are a last resort: only for the last model of the list.
        candidates = routes.routes if index == count - 1 else routes.routes[: routes.ready]
        if not candidates:
            FALLBACKS.labels(surface=surface, endpoint=routes.routes[0].endpoint_id, reason="cooling").inc()
            last = Unavailable(f"Every endpoint of model '{routes.routes[0].public_model}' is cooling down",
                               code="endpoints_cooling")
            continue
        for position, route in enumerate(candidates):
            bind_contextvars(model=route.public_model, endpoint=route.endpoint_id)
            try:
                result = await attempt(route, index == count - 1 and position == len(candidates) - 1)
            except GatewayError as exc:
                if not falls_back(exc, timeouts=timeouts):
                    raise
                FALLBACKS.labels(surface=surface, endpoint=route.endpoint_id, reason=_reason(exc)).inc()
                last = exc
                continue
            ENDPOINT_CHOSEN.labels(surface=surface, endpoint=route.endpoint_id).inc()
            return route, result
    assert last is not None  # at least one model was tried
    if count > 1:
        last.message = f"{last.message} (tried models: {', '.join(tried)})"
    raise last
