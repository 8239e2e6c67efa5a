"""/admin/routing: the active routing config (secrets redacted), endpoint health, an on-demand reload."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
from litestar import Response, Router, get, post
from litestar.datastructures import State

from app.auth import require_admin
from app.routing.reload import ReloadOutcome, RoutingReloader
from app.services import Services

REDACTED = "***"
# Leaf values under these names are secrets. Only string/number leaves are redacted, so a
# model or endpoint *named* "monkey" (its value is a mapping) is left alone.
_SECRET_NAME = re.compile(r"(?i)(key|token|secret|passw|credential|auth|cookie|session|signature|private)")


def _redact_url(value: str) -> str:
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(node: Any, name: str = "") -> Any:
    """A copy of a builtins tree with secret-named leaves and URL credentials masked."""
    if isinstance(node, dict):
        return {k: redact(v, str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [redact(v, name) for v in node]
    if _SECRET_NAME.search(name) and node not in ("", None):
        return REDACTED  # non-empty only: "" still tells the operator the secret is unset
    if isinstance(node, str):
        return _redact_url(node)
    return node


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _outcome(outcome: ReloadOutcome) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(outcome)
    body["at"] = _iso(outcome.at)
    return body


@get("/", summary="The active routing config, secrets redacted")
async def routing_status(state: State) -> dict[str, Any]:
    services: Services = state.services
    reloader: RoutingReloader = state.reloader
    loaded = services.routing.loaded  # one read: source, hash and config belong together
    return {
        "source": loaded.source,
        "sha256": loaded.sha256,
        "loaded_at": _iso(services.routing.loaded_at),
        "poll_interval_s": reloader.poll_s,
        "restart_required": reloader.restart_required(loaded.config),
        "last_error": _outcome(reloader.last_error) if reloader.last_error else None,
        "config": redact(msgspec.to_builtins(loaded.config)),
    }


@get("/health", summary="What this process knows of each RunPod endpoint's health")
async def routing_health(state: State) -> dict[str, Any]:
    """The endpoint choice's inputs (app/routing/health.py), as this process holds them now."""
    services: Services = state.services
    now = time.time()
    endpoints = {
        endpoint_id: {
            "idle_workers": entry.idle,
            "running_workers": entry.running,
            "jobs_in_queue": entry.in_queue,
            "jobs_in_progress": entry.in_progress,
            "polled_at": _iso(entry.polled_at) if entry.polled_at else None,
            "error_rate": round(entry.error_rate, 4),
            "latency_p50_ms": round(entry.latency_p50 * 1000, 2) if entry.latency_p50 is not None else None,
            "cooling_until": _iso(entry.cool_until) if entry.cool_until > now else None,
        }
        for endpoint_id, entry in sorted(services.health.endpoints.items())
    }
    return {"endpoints": endpoints}


@post("/reload", status_code=200, summary="Reload routing.yaml now, in every process")
async def routing_reload(state: State) -> Response[dict[str, Any]]:
    reloader: RoutingReloader = state.reloader
    outcome = await reloader.reload("admin")
    # 422: the file is invalid and the previous config keeps serving.
    return Response(_outcome(outcome), status_code=422 if outcome.result == "error" else 200)


routing_admin_router = Router(
    path="/admin/routing",
    route_handlers=[routing_status, routing_health, routing_reload],
    guards=[require_admin],
    tags=["admin"],
)
