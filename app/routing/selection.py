"""Which of a model's endpoints serves a request, and in what order the others are tried.

Runs on every request, so it reads only in-process state (``HealthBoard``, refreshed in the
background) and does a handful of comparisons per endpoint.

1. ``provider.only`` / ``ignore`` filter by endpoint name (or id).
2. Cooling endpoints (repeated failures) go last, tried only when nothing else is left.
3. The rest: with ``provider.sort``, sorted by it (latency: recent p50, unknown last;
   throughput: free workers minus queued jobs; price: every endpoint of a model costs the
   same here, so by weight). Without it, load-balanced: endpoints with a queue and no free
   worker come after those that can start the request now; among each group one is drawn
   by weight (lowered by the recent error rate), the others follow by weight.
4. ``provider.order`` puts the named endpoints first, in that order.
5. ``allow_fallbacks: false`` keeps only the first.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from app.routing.health import HealthBoard
from app.routing.preferences import DEFAULT_PREFS, ProviderPrefs
from app.routing.schema import EndpointRef

_rand = random.random


class Choice:
    """The endpoints to try, best first; ``ready`` of them are not cooling."""

    __slots__ = ("endpoints", "ready")

    def __init__(self, endpoints: list[EndpointRef], ready: int) -> None:
        self.endpoints = endpoints
        self.ready = ready


def _weight(ref: EndpointRef, board: HealthBoard) -> float:
    state = board.endpoints.get(ref.id)
    if state is None or not state.error_rate:
        return ref.weight
    # A flaky endpoint keeps some traffic (it may recover) but much less of it.
    return ref.weight * max(0.05, (1.0 - state.error_rate) ** 2)


def _balanced(refs: list[EndpointRef], board: HealthBoard) -> list[EndpointRef]:
    if len(refs) == 1:
        return refs
    free: list[EndpointRef] = []
    queued: list[EndpointRef] = []
    for ref in refs:
        state = board.endpoints.get(ref.id)
        (queued if state is not None and state.backlogged else free).append(ref)
    return _drawn(free, board) + _drawn(queued, board)


def _drawn(refs: list[EndpointRef], board: HealthBoard) -> list[EndpointRef]:
    """One drawn by weight first, the rest by weight, heaviest first."""
    if len(refs) < 2:
        return refs
    weights = [_weight(ref, board) for ref in refs]
    point = _rand() * sum(weights)
    pick = len(refs) - 1
    for index, weight in enumerate(weights):
        point -= weight
        if point < 0:
            pick = index
            break
    rest = sorted((i for i in range(len(refs)) if i != pick), key=lambda i: -weights[i])
    return [refs[pick], *(refs[i] for i in rest)]


def _sorted(refs: list[EndpointRef], board: HealthBoard, sort: str) -> list[EndpointRef]:
    if sort == "latency":
        def latency(ref: EndpointRef) -> tuple[float, float]:
            state = board.endpoints.get(ref.id)
            p50 = state.latency_p50 if state is not None else None
            return (p50 if p50 is not None else float("inf"), -ref.weight)
        return sorted(refs, key=latency)
    if sort == "throughput":
        def spare(ref: EndpointRef) -> tuple[int, float]:
            state = board.endpoints.get(ref.id)
            return (-(state.spare if state is not None else 0), -ref.weight)
        return sorted(refs, key=spare)
    return sorted(refs, key=lambda ref: -ref.weight)  # price: one model, one price


def choose(
    refs: Sequence[EndpointRef], board: HealthBoard, prefs: ProviderPrefs = DEFAULT_PREFS, now: float | None = None
) -> Choice:
    if len(refs) == 1 and prefs is DEFAULT_PREFS:  # the common case: nothing to choose
        ref = refs[0]
        return Choice([ref], 0 if board.cooling(ref.id, now or time.time()) else 1)
    now = now or time.time()
    only, ignore = prefs.only, prefs.ignore
    ready: list[EndpointRef] = []
    cooling: list[EndpointRef] = []
    for ref in refs:
        if only is not None or ignore:
            name, endpoint_id = ref.provider.lower(), ref.id.lower()
            if only is not None and name not in only and endpoint_id not in only:
                continue
            if name in ignore or endpoint_id in ignore:
                continue
        state = board.endpoints.get(ref.id)
        (cooling if state is not None and state.cool_until > now else ready).append(ref)
    if cooling:
        cooling.sort(key=lambda ref: board.entry(ref.id).cool_until)  # the soonest back first
    ordered = _sorted(ready, board, prefs.sort) if prefs.sort else _balanced(ready, board)
    if prefs.order:
        rank = {name: index for index, name in enumerate(prefs.order)}

        def position(ref: EndpointRef) -> int:
            return min(rank.get(ref.provider.lower(), len(rank)), rank.get(ref.id.lower(), len(rank)))

        ordered.sort(key=position)  # stable: the unnamed keep the balanced order behind the named
        cooling.sort(key=position)
    endpoints = ordered + cooling
    if not prefs.allow_fallbacks:
        endpoints = endpoints[:1]
    return Choice(endpoints, min(len(ordered), len(endpoints)))
