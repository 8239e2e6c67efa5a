"""Paying for a job: hold its quote when it starts, settle once when it ends.

Submit calls ``hold`` before the job exists (under a fresh hold id, since RunPod names the job
only when /run answers) and records the hold in the job's ``options["billing"]``; the tracker
calls ``settle`` whenever it sees the job finished. A completed job is charged for what it
measured (the worker's counts where the output has them, else the quote), capped at the hold
plus ``settle_margin``; any other end refunds in full. The hold key is the claim, so however
many replicas and retries call ``settle``, money moves once.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from typing import Any

import structlog

from app.billing.pricing import price_micro_usd
from app.billing.quote import Quote
from app.errors import FieldsInvalid
from app.jobs.records import JobRecord
from app.routing.resolver import find_model
from app.services import Services

log = structlog.get_logger("dryapi.billing")

NOT_ENOUGH = "Not enough balance."
# What a finished job's output may report, by the quantity it measures.
_MEASURED = ("output_chars", "media_seconds", "tokens", "input_tokens", "output_tokens")


class InsufficientBalance(FieldsInvalid):
    """The native 422 the seeds' SDK reads as its insufficient-balance error (``errors.balance``)."""

    def __init__(self) -> None:
        super().__init__([("balance", NOT_ENOUGH)])


async def hold(
    services: Services, key_id: str, priced: Quote, *, task: str, model: str, multiplier: float
) -> dict[str, Any]:
    """Hold ``priced`` from the key's balance; the job's ``options["billing"]``. Raises
    ``InsufficientBalance`` when the balance cannot cover it."""
    hold_id = f"hold_{secrets.token_hex(10)}"
    held = await services.ledger.hold(key_id, hold_id, priced.micro, task=task, model=model,
                                      quantities=priced.quantities)
    if not held.held:
        raise InsufficientBalance()
    return {"hold": hold_id, "price": priced.micro, "multiplier": multiplier, "quantities": priced.quantities}


async def release(services: Services, key_id: str, billing: Mapping[str, Any]) -> None:
    """Give a hold back in full: the job it was for never started."""
    await services.ledger.refund(key_id, str(billing["hold"]))


def measured(output: Any) -> dict[str, float]:
    """The quantities a finished job's output reports (``app/native/results.py`` and the /v1 usage)."""
    if not isinstance(output, dict):
        return {}
    found = {name: float(output[name]) for name in _MEASURED
             if isinstance(output.get(name), int | float) and not isinstance(output.get(name), bool)}
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
