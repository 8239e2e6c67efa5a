"""GET /admin/keys/{key_id}/ledger: a key's balance and its ledger, newest last (admin keys only)."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.datastructures import State
from litestar.params import Parameter

from app.auth import require_admin
from app.billing.ledger import entry_view
from app.billing.pricing import usd
from app.errors import NotFound
from app.services import Services


@get(
    "/admin/keys/{key_id:str}/ledger",
    guards=[require_admin],
    tags=["admin"],
    summary="A key's balance and ledger",
    description="Every hold, settlement, refund and top-up kept for the key (`DRYAPI_LEDGER_TTL_DAYS`), oldest "
    "first, with job id, task, model, quantities and USD amounts; `limit` keeps the newest ones (default 1000).",
)
async def key_ledger(
    key_id: str, state: State, limit: int = Parameter(query="limit", default=1000, ge=1, le=10_000)
) -> dict[str, Any]:
    services: Services = state.services
    if await services.key_store.get(key_id) is None:
        raise NotFound(f"No key with id {key_id[:64]}", code="key_not_found")
    entries = await services.ledger.entries(key_id, count=limit)
    balance = await services.ledger.balance(key_id)
    return {"object": "ledger", "key_id": key_id, "balance": usd(balance), "currency": "USD",
            "data": [entry_view(entry) for entry in entries]}
