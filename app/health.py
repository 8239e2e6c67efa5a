"""/healthz (the process is alive) and /readyz (it can serve: Redis, routing, upstream)."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.datastructures import State

from app.services import Services


@get("/healthz", exclude_from_auth=True, tags=["ops"], summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", exclude_from_auth=True, tags=["ops"], summary="Readiness")
async def readyz(state: State) -> Response[dict[str, Any]]:
    services: Services = state.services
    checks: dict[str, Any] = {}
    try:
        checks["redis"] = bool(await services.redis.ping())
    except Exception:
        checks["redis"] = False
    checks["routing"] = {"source": services.routing.loaded.source, "sha256": services.routing.loaded.sha256}
    config = services.routing.config
    checks["upstream"] = "local" if services.settings.local_upstream else bool(
        config.upstream.api_key or any(m.base_url for s in config.surfaces.values() for m in s.models.values())
    )
    open_mode = await services.authenticator.is_open()
    draining = bool(getattr(state, "draining", False))
    ready = bool(checks["redis"]) and not draining
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": checks,
        "open_mode": open_mode,
        "draining": draining,
    }
    if open_mode:
        body["warning"] = "No API keys exist: the gateway accepts every request on this loopback bind"
    return Response(body, status_code=200 if ready else 503)
