"""/admin/webhooks/{key_id}: a tenant's delivery state, and resuming it after the breaker paused it."""

from __future__ import annotations

from typing import Any

from litestar import Router, get, post
from litestar.datastructures import State

from app.auth import require_admin


@get("/{key_id:str}", summary="A key's webhook delivery state")
async def webhook_status(key_id: str, state: State) -> dict[str, Any]:
    status: dict[str, Any] = await state.outbox.status(key_id)
    return status


@post("/{key_id:str}/resume", status_code=200, summary="Resume a key's paused webhook deliveries")
async def webhook_resume(key_id: str, state: State) -> dict[str, Any]:
    resumed = await state.outbox.resume(key_id)
    return {"key_id": key_id, "resumed": resumed}


webhooks_admin_router = Router(
    path="/admin/webhooks", route_handlers=[webhook_status, webhook_resume], guards=[require_admin], tags=["admin"]
)
