"""/healthz (the process is alive) and /readyz (it can serve: Redis, routing, upstream; not draining)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Response, get
from litestar.datastructures import State

from app.services import Services

# A readiness probe must answer within its own timeout even when Redis hangs.
_REDIS_PING_TIMEOUT_S = 1.0


@get(
    "/healthz",
    exclude_from_auth=True,
    tags=["ops"],
    summary="Liveness",
    description="200 while the process runs; checks nothing else (use it for liveness probes).",
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _redis_ok(services: Services) -> bool:
    try:
        return bool(await asyncio.wait_for(services.redis.ping(), _REDIS_PING_TIMEOUT_S))
    except Exception:
        return False


async def _ledger_persistence(services: Services) -> str:
    """``aof`` when Redis logs every write to its append-only file, ``off`` when it does not (a
    crash loses balances since the last snapshot), ``unknown`` when it will not say (managed
    Redis services often refuse CONFIG)."""
    try:
        found = await asyncio.wait_for(services.redis.config_get("appendonly"), _REDIS_PING_TIMEOUT_S)
    except Exception:
        return "unknown"
    value = next(iter(found.values()), None) if isinstance(found, dict) else None
    if isinstance(value, bytes):
        value = value.decode()
    return {"yes": "aof", "no": "off"}.get(str(value), "unknown")


def _upstream(services: Services) -> str | bool:
    if services.settings.local_upstream:
        return "local"
    # Configured = at least one model the resolver can route (an endpoint id and a key or own base URL).
    config = services.routing.config
    key = config.upstream.api_key
    return any(m.endpoint_id and (key or m.base_url) for s in config.surfaces.values() for m in s.models.values())


@get(
    "/readyz",
    exclude_from_auth=True,
    tags=["ops"],
    summary="Readiness",
    description="200 when Redis answers, a routing config is loaded and an upstream is configured; "
    "503 otherwise and from the moment the process starts draining (SIGTERM), so load balancers "
    "stop sending before the listener closes.",
)
async def readyz(state: State) -> Response[dict[str, Any]]:
    services: Services = state.services
    drain = getattr(state, "drain", None)
    draining = bool(drain is not None and drain.active)
    loaded = services.routing.loaded
    checks: dict[str, Any] = {
        "redis": await _redis_ok(services),
        "routing": {"source": loaded.source, "sha256": loaded.sha256} if loaded is not None else False,
        "upstream": _upstream(services),
    }
    try:
        open_mode = await asyncio.wait_for(services.authenticator.is_open(), _REDIS_PING_TIMEOUT_S)
    except Exception:
        open_mode = False
    ready = all(bool(value) for value in checks.values()) and not draining
    body: dict[str, Any] = {
        "status": "ready" if ready else "not_ready",
        "checks": checks,
        "open_mode": open_mode,
        "draining": draining,
    }
    warnings = []
    if open_mode:
        warnings.append("No API keys exist: the gateway accepts every request on this loopback bind")
    if services.routing.config.billing.enabled:
        persistence = await _ledger_persistence(services)
        body["billing"] = {"enabled": True, "redis_persistence": persistence}
        if persistence != "aof":
            warnings.append(f"Billing is on but Redis append-only persistence is {persistence}: a Redis crash "
                            "can lose balances and ledger entries (run Redis with appendonly yes)")
    if warnings:
        body["warning"] = "; ".join(warnings)
    return Response(body, status_code=200 if ready else 503)
