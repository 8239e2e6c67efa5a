"""GET /admin/keys/{key_id}/ledger: a key's balance and its ledger, newest last (admin keys only)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.datastructures import State

from app.auth import require_admin
from app.billing.ledger import entry_view
from app.billing.pricing import usd
from app.errors import NotFound
from app.services import Services

_DEFAULT_LIMIT = 1000
_MAX_LIMIT = 10_000


@get(
    "/admin/keys/{key_id:str}/ledger",
    guards=[require_admin],
    tags=["admin"],
    summary="A key's balance and ledger",
    description="Every hold, settlement, refund and top-up kept for the key (`DRYAPI_LEDGER_TTL_DAYS`), oldest "
    "first, with job id, task, model, quantities and USD amounts; `?limit=N` keeps the newest N "
    "(1-10000, default 1000; an unreadable value means the default).",
)
async def key_ledger(key_id: str, request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    services: Services = state.services
    limit = _limit(request.query_params.get("limit"))
    if await services.key_store.get(key_id) is None:
        raise NotFound(f"No key with id {key_id[:64]}", code="key_not_found")
    entries = await services.ledger.entries(key_id, count=limit)
    balance = await services.ledger.balance(key_id)
    return {"object": "ledger", "key_id": key_id, "balance": usd(balance), "currency": "USD",
            "data": [entry_view(entry) for entry in entries]}


def _limit(raw: str | None) -> int:
    # Read by hand and clamped: a bad value is no reason to refuse an operator's read.
    try:
        value = int(raw) if raw is not None else _DEFAULT_LIMIT
    except ValueError:
        value = _DEFAULT_LIMIT
    return min(max(value, 1), _MAX_LIMIT)
