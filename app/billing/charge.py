"""Paying for a job: hold its quote when it starts, settle once when it ends.

Submit calls ``hold`` before the job exists (under a fresh hold id, since RunPod names the job
only when /run answers) and records the hold in the job's ``options["billing"]``; the tracker
calls ``settle`` whenever it sees the job finished. A completed job is charged for what it
measured (the worker's counts where the output has them, else the quote), capped at the hold
plus ``settle_margin``; any other end refunds in full. The hold key is the claim, so however
many replicas and retries call ``settle``, money moves once.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any, TypeVar

import msgspec
import structlog
from litestar import Response
from redis.exceptions import RedisError

from app.auth import Principal
from app.billing.pricing import price_micro_usd
from app.billing.quote import Quote, Unpriceable, tier_multiplier
from app.errors import FieldsInvalid, Unavailable, UpstreamTimeout
from app.jobs.records import JobRecord
from app.routing.resolver import Route, find_model
from app.services import Services

log = structlog.get_logger("dryapi.billing")
T = TypeVar("T")

NOT_ENOUGH = "Not enough balance."
# Hold ids: a random per-process prefix and a counter (unique across replicas, and no
# urandom call per submit).
_HOLD_PREFIX = secrets.token_hex(8)
_hold_numbers = itertools.count(1)
# What a finished job's output may report, by the quantity it measures.
_MEASURED = ("output_chars", "media_seconds", "tokens", "input_tokens", "output_tokens")


class InsufficientBalance(FieldsInvalid):
    """Natively the 422 the seeds' SDK reads as its insufficient-balance error (``errors.balance``);
    on /v1 OpenAI's 429 ``insufficient_quota``, which its SDKs do not retry."""

    status_code = 429
    error_type = "insufficient_quota"
    default_code = "insufficient_quota"

    def __init__(self) -> None:
        super().__init__([("balance", NOT_ENOUGH)])


async def hold(
    services: Services, key_id: str, priced: Quote, *, task: str, model: str, multiplier: float
) -> dict[str, Any]:
    """Hold ``priced`` from the key's balance; the job's ``options["billing"]``. Raises
    ``InsufficientBalance`` when the balance cannot cover it."""
    hold_id = f"hold_{_HOLD_PREFIX}{next(_hold_numbers):x}"
    try:
        held = await services.ledger.hold(key_id, hold_id, priced.micro, task=task, model=model,
                                          quantities=priced.quantities)
    except (RedisError, OSError) as exc:  # paid work is refused, never run unpaid
        log.warning("billing_unavailable", error_type=type(exc).__name__)
        raise Unavailable("The balance cannot be checked right now; retry shortly.", code="billing_unavailable",
                          retry_after_s=5) from None
    if not held.held:
        raise InsufficientBalance()
    return {"hold": hold_id, "price": priced.micro, "multiplier": multiplier, "quantities": priced.quantities}


async def hold_for(
    services: Services, principal: Principal, route: Route, quantities: Mapping[str, float], *, task: str
) -> dict[str, Any] | None:
    """A /v1 request's hold when billing is on: ``quantities`` priced by its model's rules (the
    same ``price_micro_usd`` as every quote); None when billing is off."""
    config = services.routing.config
    if not config.billing.enabled:
        return None
    surface = config.surfaces.get(route.surface)  # type: ignore[call-overload]
    found = find_model(surface, route.public_model) if surface is not None else None
    rules = found[1].pricing_rules if found is not None else ()
    multiplier = tier_multiplier(config.billing, principal.tier)
    try:
        micro = price_micro_usd(rules, quantities, multiplier=multiplier)
    except ValueError:
        raise Unpriceable([("model", f"The model's price cannot be computed for {task}.")]) from None
    priced = Quote(micro, dict(quantities))
    return await hold(services, principal.key_id, priced, task=task, model=route.public_model, multiplier=multiplier)


async def paid(services: Services, key_id: str, billing: Mapping[str, Any] | None, work: Awaitable[T]) -> T:
    """``work``'s result; its hold given back if it fails (a sync job that outlived its wait is
    followed instead, and settles when it ends)."""
    if billing is None:
        return await work
    try:
        return await work
    except UpstreamTimeout:
        raise
    except BaseException:
        await release(services, key_id, billing)
        raise


async def paid_enqueue(
    services: Services, key_id: str, billing: Mapping[str, Any] | None, work: Awaitable[Response[bytes]]
) -> Response[bytes]:
    """``paid`` for ``enqueue``: an ``Idempotency-Key`` replay started no job, so its hold goes back."""
    response = await paid(services, key_id, billing, work)
    if billing is not None and response.headers.get("idempotent-replayed"):
        await release(services, key_id, billing)
    return response


async def settle_output(
    services: Services, key_id: str, route: Route, billing: Mapping[str, Any] | None, output: Any
) -> None:
    """Settle a /v1 request that answered in the request itself (no job record to settle from)."""
    if billing is None:
        return
    record = JobRecord(id=str(billing["hold"]), owner=key_id, surface=route.surface, model=route.public_model,
                       endpoint_id=route.endpoint_id, endpoint_url="", created=0, nonce="",
                       options={"billing": billing})
    await settle(services, record, {"status": "COMPLETED", "output": output})


async def release(services: Services, key_id: str, billing: Mapping[str, Any]) -> None:
    """Give a hold back in full: the job it was for never started."""
    await services.ledger.refund(key_id, str(billing["hold"]))


def measured(output: Any) -> dict[str, float]:
    """The quantities a finished job's output reports (``app/native/results.py`` and the /v1 usage)."""
    if not isinstance(output, dict):
        return {}
    found = {name: float(output[name]) for name in _MEASURED
             if isinstance(output.get(name), int | float) and not isinstance(output.get(name), bool)}
    if "media_seconds" not in found and isinstance(output.get("duration"), int | float):
        found["media_seconds"] = float(output["duration"])  # a transcription worker's own output
    usage = output.get("usage")
    if isinstance(usage, dict):
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(prompt, int):
            found.setdefault("input_tokens", float(prompt))
            found.setdefault("tokens", float(prompt))
        if isinstance(completion, int):
            found.setdefault("output_tokens", float(completion))
    return {name: value for name, value in found.items() if math.isfinite(value) and value >= 0}


def _charge(
    services: Services, record: JobRecord, billing: Mapping[str, Any], output: Any
) -> tuple[int, dict[str, float]]:
    price = int(billing["price"])
    quoted: dict[str, float] = dict(billing.get("quantities") or {})
    found = measured(output)
    quantities = quoted | {name: value for name, value in found.items() if name in quoted}
    if quantities == quoted:
        return price, quoted
    surface = services.routing.config.surfaces.get(record.surface)  # type: ignore[call-overload]
    model = find_model(surface, record.model) if surface is not None else None
    if model is None:  # the model left routing.yaml meanwhile: the quote stands
        return price, quoted
    try:
        charge = price_micro_usd(model[1].pricing_rules, quantities, multiplier=float(billing.get("multiplier", 1.0)))
    except ValueError:
        return price, quoted
    margin = services.routing.config.billing.settle_margin
    return min(charge, math.floor(price * (1 + margin))), quantities


async def settle(services: Services, record: JobRecord, body: Mapping[str, Any]) -> None:
    """Settle ``record``'s hold from its terminal ``body`` (a no-op when already settled)."""
    billing = record.options.get("billing")
    if not isinstance(billing, dict) or "hold" not in billing:
        return
    if body.get("status") == "COMPLETED":
        charge, quantities = _charge(services, record, billing, body.get("output"))
    else:
        charge, quantities = 0, {}
    done = await services.ledger.settle(record.owner, str(billing["hold"]), charge, quantities=quantities or None,
                                        named=record.id)
    if done.settled:
        log.info("job_settled", job_id=record.id, charged=charge, refunded=done.refunded)


async def billed_stream(
    frames: AsyncIterator[bytes], services: Services, key_id: str, route: Route, billing: Mapping[str, Any] | None
) -> AsyncIterator[bytes]:
    """Relay a chat stream's SSE frames; settle from its final usage chunk once it ends (no
    usage reported: the hold's estimate stands)."""
    usage: Any = None
    try:
        async for frame in frames:
            if b'"usage"' in frame and frame.startswith(b"data: "):
                with contextlib.suppress(msgspec.DecodeError, AttributeError):
                    usage = msgspec.json.decode(frame[6:]).get("usage") or usage
            yield frame
    finally:
        await settle_output(services, key_id, route, billing, {"usage": usage} if isinstance(usage, dict) else None)
