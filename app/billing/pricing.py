"""The price of a request, from its model's ``pricing`` rules and the request's quantities.

One function prices everything: ``/price-calculation`` answers with it and submit holds what it
returns, so a quote and a hold can never disagree. Money is integer micro-dollars from here on;
floats exist only in routing.yaml and in the USD figures shown to clients.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from app.routing.schema import PricingRule

MICRO_USD = 1_000_000


class QuantityMissing(ValueError):
    """A rule scales with a quantity the request did not provide (a task/rule mismatch)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the price depends on {name!r}, which this request does not provide")
        self.name = name


def _checked(name: str, value: float) -> float:
    # Validation bounds requests before pricing; this guards the arithmetic itself.
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"quantity {name!r} must be a finite, non-negative number")
    return value


def rule_usd(rule: PricingRule, quantities: Mapping[str, float]) -> float:
    usd = rule.usd
    for name, reference in rule.per.items():
        if name not in quantities:
            raise QuantityMissing(name)
        usd *= _checked(name, quantities[name]) / reference
    for name, reference in rule.inverse.items():
        value = _checked(name, quantities.get(name, reference))
        if value == 0:
            raise ValueError(f"quantity {name!r} must be positive")
        usd *= reference / value
    return max(usd, rule.minimum_usd)


def price_micro_usd(rules: Iterable[PricingRule], quantities: Mapping[str, float], *, multiplier: float = 1.0) -> int:
    """The summed price of ``rules`` in whole micro-dollars, rounded up: a paid request never
    costs nothing (ten embedding tokens are 0.68 micro-USD). The tolerance keeps float noise in an
    exact figure (0.00136 * 1.0000000000000002) from adding a micro-dollar."""
    total = sum(rule_usd(rule, quantities) for rule in rules) * multiplier
    return max(0, math.ceil(total * MICRO_USD - 1e-6))


def usd(micro: int) -> float:
    """Micro-dollars as the USD number clients see."""
    return micro / MICRO_USD


def usd_to_micro(amount: float) -> int:
    """A USD figure from routing.yaml or an operator, in whole micro-dollars."""
    return round(amount * MICRO_USD)
