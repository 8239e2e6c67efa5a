"""A task request's price: its quantities, its model's rules and its key's tier, in one call.

``/price-calculation`` answers with ``quote`` and native submit holds exactly what ``quote``
returns for the same fields, so a quote and a hold can never disagree.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.billing.pricing import QuantityMissing, price_micro_usd
from app.errors import FieldsInvalid
from app.routing.schema import BillingConfig, ModelRoute
from app.tasks.spec import TaskSpec, Uploads


class Quote(msgspec.Struct, frozen=True):
    micro: int  # the price in micro-USD
    quantities: dict[str, float]  # what it was computed from (kept in the ledger)


class Unpriceable(FieldsInvalid):
    """The model's rules cannot price this request (a rule names a quantity the task lacks): a
    422 naming the model, so no job runs unpriced."""


def tier_multiplier(billing: BillingConfig, tier: str) -> float:
    found = billing.tiers.get(tier)
    return found.price_multiplier if found is not None else 1.0


def quote(
    spec: TaskSpec, params: Any, uploads: Uploads, route: ModelRoute, billing: BillingConfig, tier: str
) -> Quote:
    quantities = spec.quantities(params, uploads, route)
    try:
        micro = price_micro_usd(route.pricing_rules, quantities, multiplier=tier_multiplier(billing, tier))
    except QuantityMissing as exc:
        raise Unpriceable([("model", f"The selected model's price depends on {exc.name}, "
                                     f"which {spec.name} does not provide.")]) from None
    except ValueError as exc:
        raise Unpriceable([("body", str(exc))]) from None
    return Quote(micro, quantities)
