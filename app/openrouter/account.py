"""OpenRouter's account routes for the calling key: GET /api/v1/key, /api/v1/credits and
/api/v1/generation?id=.

Money comes from the billing ledger (app/billing/ledger.py): ``usage`` is what settled charges
and holds still in flight took, ``credits`` the balance plus that usage. The ledger keeps
``DRYAPI_LEDGER_TTL_DAYS`` of entries, so usage counts that window. Billing off: no money moves,
every figure is 0 and the key has no limit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, get
from litestar.params import Parameter

from app.auth import principal_of
from app.billing.ledger import LedgerEntry
from app.billing.pricing import usd
from app.errors import NotFound
from app.generations import Generation, load
from app.limits import exempt, windows_for
from app.openrouter import docs
from app.services import Services

# The newest ledger entries a summary reads.
_ENTRIES = 10_000


class Spend(msgspec.Struct):
    """Micro-USD: the key's balance, and what it used in all / this UTC day, week, month."""

    balance: int = 0
    total: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0


def _starts(now: datetime) -> tuple[int, int, int]:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week = day - timedelta(days=day.weekday())
    month = day.replace(day=1)
    return tuple(int(moment.timestamp() * 1000) for moment in (day, week, month))  # type: ignore[return-value]


def spend_of(entries: list[LedgerEntry], balance: int, now: datetime) -> Spend:
    """Usage from the ledger: each settled charge, plus each hold not yet settled (in flight)."""
    day, week, month = _starts(now)
    open_holds: dict[str, LedgerEntry] = {}
    used: list[tuple[int, int]] = []  # (at ms, micro-USD)
    for entry in entries:
        if entry.kind == "hold" and entry.job_id:
            open_holds[entry.job_id] = entry
        elif entry.kind in ("settle", "refund"):
            open_holds.pop(entry.hold or entry.job_id or "", None)
            if entry.kind == "settle":
                used.append((entry.at_ms, entry.amount))
    used += [(entry.at_ms, entry.amount) for entry in open_holds.values()]
    spend = Spend(balance=balance)
    for at_ms, amount in used:
        spend.total += amount
        spend.daily += amount if at_ms >= day else 0
        spend.weekly += amount if at_ms >= week else 0
        spend.monthly += amount if at_ms >= month else 0
    return spend


async def _spend(services: Services, key_id: str) -> Spend | None:
    """None when billing is off."""
    if not services.routing.config.billing.enabled:
        return None
    balance = await services.ledger.balance(key_id)
    entries = await services.ledger.entries(key_id, count=_ENTRIES)
    return spend_of(entries, balance, datetime.now(UTC))


def _rate_limit(services: Services, tier: str, unlimited: bool) -> dict[str, Any]:
    """The tier's tightest per-minute window (the one a burst meets first)."""
    windows = [] if unlimited else windows_for(services.routing.config.limits, tier, None)
    minute = [w for w in windows if w.period == 60]
    if not minute:
        return {"requests": -1, "interval": "1m", "note": "no request limit for this key's tier"}
    return {"requests": min(w.limit for w in minute), "interval": "1m",
            "note": f"tier {tier}: requests per minute, all surfaces"}


@get(
    "/api/v1/key",
    summary="The calling API key",
    description="OpenRouter's current-key object: label, limit (credits, when billing is on), usage in USD "
    "(all, this UTC day/week/month), rate limit of the key's tier.",
    tags=["openai"],
    responses=docs.RESPONSES,
)
async def current_key(request: Request[Any, Any, Any]) -> dict[str, Any]:
    services: Services = request.app.state.services
    principal = principal_of(request)
    record = await services.key_store.get(principal.key_id)
    spend = await _spend(services, principal.key_id)
    data: dict[str, Any] = {
        "label": record.name if record is not None else principal.key_id,
        "limit": usd(spend.balance + spend.total) if spend is not None else None,
        "limit_remaining": usd(spend.balance) if spend is not None else None,
        "limit_reset": None,
        "usage": usd(spend.total) if spend else 0.0,
        "usage_daily": usd(spend.daily) if spend else 0.0,
        "usage_weekly": usd(spend.weekly) if spend else 0.0,
        "usage_monthly": usd(spend.monthly) if spend else 0.0,
        "byok_usage": 0.0, "byok_usage_daily": 0.0, "byok_usage_weekly": 0.0, "byok_usage_monthly": 0.0,
        "include_byok_in_limit": False,
        "is_free_tier": principal.tier == "free",
        "is_management_key": principal.admin,
        "is_provisioning_key": False,
        "rate_limit": _rate_limit(services, principal.tier, exempt(principal)),
        "free_model_daily_requests": {"limit": 0, "remaining": 0, "used": 0},
        "allowed_data_regions": ["global"],
        "budgets": [],
        "effective_budget": None,
        "creator_user_id": None,
        "organization_id": None,
        "workspace_id": None,
        "expires_at": None,
        # The gateway's own.
        "key_id": principal.key_id,
        "tier": principal.tier,
    }
    return {"data": data}


@get(
    "/api/v1/credits",
    summary="The calling key's credits",
    description="`total_credits` (balance plus usage) and `total_usage` in USD, from the billing ledger.",
    tags=["openai"],
    responses=docs.RESPONSES,
)
async def credits(request: Request[Any, Any, Any]) -> dict[str, Any]:
    services: Services = request.app.state.services
    spend = await _spend(services, principal_of(request).key_id)
    if spend is None:
        return {"data": {"total_credits": 0.0, "total_usage": 0.0}}
    return {"data": {"total_credits": usd(spend.balance + spend.total), "total_usage": usd(spend.total)}}


_API_TYPES = {"chat": "completions", "embeddings": "embeddings", "images": "image", "transcribe": "stt",
              "speech": "tts", "video": "video"}


def generation_view(generation: Generation) -> dict[str, Any]:
    created = datetime.fromtimestamp(generation.created, UTC).isoformat(timespec="milliseconds")
    return {
        "id": generation.id,
        "model": generation.model,
        "provider_name": generation.provider,
        "api_type": _API_TYPES.get(generation.surface),
        "created_at": created.replace("+00:00", "Z"),
        "latency": generation.latency_ms,
        "generation_time": generation.latency_ms,
        "moderation_latency": None,
        "streamed": generation.streamed,
        "cancelled": False,
        "finish_reason": generation.finish_reason,
        "native_finish_reason": generation.finish_reason,
        "tokens_prompt": generation.prompt_tokens,
        "tokens_completion": generation.completion_tokens,
        "native_tokens_prompt": generation.prompt_tokens,
        "native_tokens_completion": generation.completion_tokens,
        "native_tokens_reasoning": None, "native_tokens_cached": None, "native_tokens_completion_images": None,
        "num_media_prompt": None, "num_media_completion": None, "num_input_audio_prompt": None,
        "num_search_results": None, "num_fetches": None,
        "total_cost": generation.cost,
        "usage": generation.cost,
        "upstream_inference_cost": None,
        "cache_discount": None,
        "is_byok": False,
        "origin": "",
        "app_id": None, "http_referer": None, "user_agent": None, "external_user": None, "preset_id": None,
        "provider_responses": None, "router": None, "service_tier": None, "upstream_id": None,
        "web_search_engine": None, "workspace_id": None,
        "data_region": "global",
        # The gateway's own: the RunPod endpoint that served.
        "endpoint_id": generation.endpoint_id,
    }


@get(
    "/api/v1/generation",
    summary="A finished request's stats",
    description="Model, endpoint, tokens, cost (USD) and latency (ms) of a chat, embeddings or images request "
    "this key made, by its response `id`; kept for `DRYAPI_RESULT_TTL_S`.",
    tags=["openai"],
    responses=docs.RESPONSES,
)
async def generation(request: Request[Any, Any, Any], id: str = Parameter(min_length=1)) -> dict[str, Any]:
    services: Services = request.app.state.services
    found = await load(services, id, principal_of(request).key_id)
    if found is None:
        raise NotFound("No generation with this id for this key (or it has expired)", param="id",
                       code="generation_not_found")
    return {"data": generation_view(found)}
