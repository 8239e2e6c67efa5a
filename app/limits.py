"""Per-key rate limits: fixed windows per minute and per UTC day, counted in Redis.

routing.yaml's ``limits:`` names tiers; a key whose tier is not listed is unlimited and costs
no Redis call. An inference request counts against its tier's overall windows and, where set,
its surface's; all of a request's windows are checked and counted by one Lua script
(``app/lua/rate_windows.lua``: one round trip, atomic, so the count is exact across processes
and replicas). Window boundaries
come from Redis' clock, so every replica agrees on them; a refused request consumes nothing.
"""

from __future__ import annotations

import math
from typing import Any

import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Receive, Scope, Send

from app import lua
from app.auth import Principal
from app.errors import RateLimited, Unavailable
from app.metrics import RATE_LIMITED
from app.redis_guard import RedisUnavailable
from app.routing.schema import LimitsConfig, Surface, WindowLimits
from app.services import Services

log = structlog.get_logger("dryapi.limits")

MINUTE, DAY = 60, 86400
# request.state attribute holding the x-ratelimit-* headers that ``rate_headers`` sends.
STATE_HEADERS = "ratelimit_headers"

class Window:
    __slots__ = ("count", "limit", "period", "scope")

    def __init__(self, scope: str, period: int, limit: int) -> None:
        self.scope = scope
        self.period = period
        self.limit = limit
        self.count = 0


def windows_for(config: LimitsConfig, tier: str, surface: Surface | None, task: str | None = None) -> list[Window]:
    """The windows a request of ``tier`` counts against: for a /v1 route the tier's and its
    ``surface``'s; for a native route its ``task``'s own and those of every group holding it."""
    spec = config.tiers.get(tier)
    if spec is None:
        return []
    found: list[Window] = []

    def add(scope: str, limits: WindowLimits) -> None:
        if limits.rpm is not None:
            found.append(Window(scope, MINUTE, limits.rpm))
        if limits.rpd is not None:
            found.append(Window(scope, DAY, limits.rpd))

    if task is not None:
        # A native route counts per route (and group), as the seeds set its limits: not against
        # the tier's overall and surface windows, which are the /v1 routes'.
        for name in (task, *(group for group, members in config.groups.items() if task in members)):
            limits = spec.tasks.get(name)
            if limits is not None:
                add(f"task:{name}", limits)
        return found
    add("all", spec)
    surface_limits = spec.surfaces.get(surface) if surface is not None else None
    if surface_limits is not None:
        add(surface, surface_limits)  # type: ignore[arg-type]
    return found


def duration(seconds: float) -> str:
    """OpenAI's reset form: ``12s``, ``1m3s``, ``2h0m5s`` (whole seconds, rounded up)."""
    total = max(0, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def exempt(principal: Principal) -> bool:
    # The operator (no-key open mode, DRYAPI_ADMIN_KEY) is never limited.
    return principal.open_mode or principal.key_id == "admin"


class Limiter:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._script = lua.register(services.redis, "rate_windows")

    async def _count(self, key_id: str, windows: list[Window]) -> tuple[bool, float]:
        """Check and count every window at once; return (admitted, Redis' clock)."""
        keys = self.services.keys
        names = [keys.rate_window(key_id, w.scope, w.period) for w in windows]
        args = [w.limit for w in windows] + [w.period for w in windows]
        result: list[Any] = await self.services.authenticator.guard.run(lambda: self._script(names, args))
        for window, count in zip(windows, result[3:], strict=True):
            window.count = int(count)
        return bool(result[0]), int(result[1]) + int(result[2]) / 1e6

    async def check(self, principal: Principal, scope: str, windows: list[Window]) -> dict[str, str] | None:
        """Count one request; return its x-ratelimit headers, or raise 429 / 503."""
        if not windows or exempt(principal):
            return None
        try:
            admitted, now = await self._count(principal.key_id, windows)
        except RedisUnavailable as exc:
            if self.services.settings.redis_failure == "open":
                log.warning("rate_limit_skipped", reason="redis_unavailable", key_id=principal.key_id)
                return None
            raise Unavailable(
                "Rate limits cannot be checked right now; retry shortly", retry_after_s=exc.retry_after_s
            ) from None

        def reset(window: Window) -> float:
            return window.period - now % window.period

        if admitted:
            shown = min(windows, key=lambda w: (w.limit - w.count, -reset(w)))
            return _headers(shown, reset(shown))
        blocking = max((w for w in windows if w.count >= w.limit), key=reset)
        headers = _headers(blocking, reset(blocking))
        # The seeds' SDK reads which window ran out (minute: wait; daily: wait for 00:00 UTC).
        headers["x-ratelimit-type"] = "minute" if blocking.period == MINUTE else "daily"
        RATE_LIMITED.labels(principal.tier, scope).inc()
        per = "minute" if blocking.period == MINUTE else "day"
        where = "" if blocking.scope == "all" else f" on {blocking.scope}"
        error = RateLimited(
            f"Rate limit reached for requests{where}: {blocking.limit} per {per} for tier {principal.tier}",
            retry_after_s=math.ceil(reset(blocking)),
            headers=headers,
        )
        raise error


def _headers(window: Window, reset_s: float) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": str(window.limit),
        "x-ratelimit-remaining-requests": str(max(0, window.limit - window.count)),
        "x-ratelimit-reset-requests": duration(reset_s),
    }


def _limiter(connection: ASGIConnection[Any, Any, Any, Any]) -> Limiter:
    limiter: Limiter = connection.app.state.limiter
    return limiter


async def _check(
    connection: ASGIConnection[Any, Any, Any, Any], principal: Principal, scope: str, windows: list[Window]
) -> None:
    if not windows:
        return  # unlimited: no Redis call, no headers
    headers: dict[str, str] | None = None
    try:
        headers = await _limiter(connection).check(principal, scope, windows)
    except RateLimited as exc:
        headers = exc.headers
        raise
    finally:
        if headers:
            # ``rate_headers`` (route middleware) puts them on the response, success or error.
            setattr(connection.state, STATE_HEADERS, headers)


async def limit_request(
    request: Request[Any, Any, Any], principal: Principal, surface: Surface | None, task: str | None = None
) -> None:
    """A request: count it against its tier's (surface's, native route's) windows; 429 when over."""
    config = _limiter(request).services.routing.config.limits
    windows = windows_for(config, principal.tier, surface, task)
    await _check(request, principal, task or surface or "all", windows)


async def limit_jobs(connection: ASGIConnection[Any, Any, Any, Any], principal: Principal) -> None:
    """A jobs read (GET /v1/jobs/* or a WebSocket open): the per-key ``jobs_rpm``."""
    rpm = _limiter(connection).services.routing.config.limits.jobs_rpm
    await _check(connection, principal, "jobs", [Window("jobs", MINUTE, rpm)] if rpm is not None else [])


def rate_headers(app: ASGIApp) -> ASGIApp:
    """Route middleware: every response of the route (success or error) gets the stashed
    x-ratelimit-* headers, added once the handler (or its exception handler) starts answering."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        http: Any = scope  # plain dicts below: the typed ASGI unions do not help here

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                stashed: dict[str, str] | None = (http.get("state") or {}).get(STATE_HEADERS)
                if stashed:
                    headers = list(message.get("headers") or [])
                    present = {bytes(name).lower() for name, _ in headers}
                    headers += [
                        (k.encode(), v.encode()) for k, v in stashed.items() if k.lower().encode() not in present
                    ]
                    message["headers"] = headers
            await send(message)

        await app(scope, receive, send_with_headers if http["type"] == "http" else send)

    return middleware
