"""A request's routing wishes: OpenRouter's ``models`` fallback list and ``provider`` preferences.

Dialect-neutral: the OpenAI-dialect routes (on /v1 and /api/v1) read them from the body; the
engine (resolver, selection, fallback) only sees these values.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from app.errors import InvalidRequest

Sort = Literal["price", "throughput", "latency"]
SORTS: tuple[str, ...] = ("price", "throughput", "latency")
# A request may name this many fallback models (OpenRouter's own lists are short too).
MAX_MODELS = 8
_MAX_NAMES = 64

# OpenRouter's provider keys that have no meaning for an operator's own endpoints (data policy,
# quantization, price caps): accepted so SDK calls that set them work, and ignored.
IGNORED_KEYS = frozenset({
    "data_collection", "zdr", "enforce_distillable_text", "require_parameters", "quantizations",
    "max_price", "preferred_min_throughput", "preferred_max_latency", "options",
})  # fmt: skip
_KNOWN_KEYS = frozenset({"order", "only", "ignore", "allow_fallbacks", "sort"}) | IGNORED_KEYS


class ProviderPrefs(msgspec.Struct, frozen=True, kw_only=True):
    """Names are endpoint ``name`` (or id) from routing.yaml, matched without case."""

    order: tuple[str, ...] = ()
    only: frozenset[str] | None = None
    ignore: frozenset[str] = frozenset()
    allow_fallbacks: bool = True
    sort: Sort | None = None


DEFAULT_PREFS = ProviderPrefs()


def _names(value: Any, field: str, bad: list[str]) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > _MAX_NAMES or not all(isinstance(v, str) and v for v in value):
        bad.append(f"provider.{field}")
        return None
    return [v.lower() for v in value]


def _sort(value: Any, bad: list[str]) -> Sort | None:
    # OpenRouter also takes {"by": "...", "partition": ...}; only "by" means something here.
    if isinstance(value, dict):
        if set(value) - {"by", "partition"}:
            bad.append("provider.sort")
            return None
        value = value.get("by")
    if value is None:
        return None
    if value not in SORTS:
        bad.append("provider.sort")
        return None
    return value  # type: ignore[no-any-return]


def parse_provider(value: Any) -> ProviderPrefs:
    """The ``provider`` object; every bad or unknown key is named in one 400."""
    if value is None:
        return DEFAULT_PREFS
    if not isinstance(value, dict):
        raise InvalidRequest("provider must be an object", param="provider")
    bad = [f"provider.{key}" for key in value if key not in _KNOWN_KEYS]
    order = _names(value.get("order"), "order", bad)
    only = _names(value.get("only"), "only", bad)
    ignore = _names(value.get("ignore"), "ignore", bad)
    allow = value.get("allow_fallbacks")
    if allow is not None and not isinstance(allow, bool):
        bad.append("provider.allow_fallbacks")
    sort = _sort(value.get("sort"), bad)
    if bad:
        raise InvalidRequest(
            f"Invalid provider preferences: {', '.join(bad)} (known keys: order, only, ignore, allow_fallbacks, "
            f"sort as one of {', '.join(SORTS)})",
            param=bad[0],
        )
    return ProviderPrefs(
        order=tuple(order or ()),
        only=frozenset(only) if only is not None else None,
        ignore=frozenset(ignore or ()),
        allow_fallbacks=allow is not False,
        sort=sort,
    )


def parse_models(model: Any, models: Any, route: Any) -> list[str | None]:
    """The models to try, in order. ``model`` (when given) comes first, then ``models`` without
    repeats, as OpenRouter does; neither given: ``[None]``, the surface's default model."""
    if route is not None and route != "fallback":
        raise InvalidRequest('route must be "fallback"', param="route")
    if models is None or models == []:
        return [model if isinstance(model, str) else None]
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise InvalidRequest("models must be a list of model names", param="models")
    if len(models) > MAX_MODELS:
        raise InvalidRequest(f"models may name at most {MAX_MODELS} models", param="models")
    ordered: list[str | None] = [model] if isinstance(model, str) and model else []
    for name in models:
        if name not in ordered:
            ordered.append(name)
    return ordered


class RoutingWishes(msgspec.Struct, frozen=True):
    models: list[str | None]
    prefs: ProviderPrefs


def take_wishes(body: dict[str, Any]) -> RoutingWishes:
    """Pops ``models``, ``route`` and ``provider`` off a request body (they never reach a worker);
    when both the model list and the preferences are wrong, one 400 names both."""
    problems: list[InvalidRequest] = []
    models: list[str | None] = [None]
    prefs = DEFAULT_PREFS
    try:
        models = parse_models(body.get("model"), body.pop("models", None), body.pop("route", None))
    except InvalidRequest as exc:
        problems.append(exc)
    try:
        prefs = parse_provider(body.pop("provider", None))
    except InvalidRequest as exc:
        problems.append(exc)
    if len(problems) > 1:
        raise InvalidRequest("; ".join(p.message for p in problems), param=problems[0].param)
    if problems:
        raise problems[0]
    return RoutingWishes(models, prefs)
