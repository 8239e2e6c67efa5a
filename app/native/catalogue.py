"""The native models catalogue (``GET /api/v1/client/models``), rendered from routing.yaml.

A Laravel-style page (``data``, ``links``, ``meta``), which the seeds' SDK, MCP server and
tester all parse (reference §4.1.2). Only models that list ``inference_types`` appear.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

import msgspec

from app.routing.schema import ModelRoute, RoutingConfig

DEFAULT_PER_PAGE = 50  # the MCP server reads only the first page: show the whole catalogue
MAX_PER_PAGE = 100
# Spellings clients filter by that the catalogue spells otherwise (reference §13 point 5).
_TYPE_ALIASES = {"audio2video": "aud2video"}


class CatalogueQuery(msgspec.Struct, frozen=True):
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    inference_types: frozenset[str] = frozenset()


class InvalidQuery(ValueError):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(message for _, message in errors))
        self.errors = errors


def _positive(params: dict[str, str], name: str, default: int, most: int | None) -> tuple[int, str | None]:
    raw = params.get(name)
    if raw is None or raw == "":
        return default, None
    try:
        value = int(raw)
    except ValueError:
        return default, f"The {name} must be an integer."
    if value < 1 or (most is not None and value > most):
        bound = f"between 1 and {most}" if most is not None else "at least 1"
        return default, f"The {name} must be {bound}."
    return value, None


def parse_query(params: dict[str, str]) -> CatalogueQuery:
    """``page``, ``per_page`` (``limit`` as the tester's v1 spelling) and
    ``filter[inference_types]`` (one type or a comma-separated list, matched as any-of)."""
    errors: list[tuple[str, str]] = []
    page, problem = _positive(params, "page", 1, None)
    if problem:
        errors.append(("page", problem))
    size_name = "per_page" if "per_page" in params else "limit"
    per_page, problem = _positive(params, size_name, DEFAULT_PER_PAGE, MAX_PER_PAGE)
    if problem:
        errors.append((size_name, problem))
    if errors:
        raise InvalidQuery(errors)
    wanted = params.get("filter[inference_types]", "")
    kinds = frozenset(_TYPE_ALIASES.get(k.strip(), k.strip()) for k in wanted.split(",") if k.strip())
    return CatalogueQuery(page=page, per_page=per_page, inference_types=kinds)


def model_item(slug: str, route: ModelRoute) -> dict[str, Any]:
    return {
        "name": route.name or slug,
        "slug": slug,
        "inference_types": list(route.inference_types),
        "info": msgspec.to_builtins(route.info),
        "loras": [{"display_name": lora.display_name or lora.name, "name": lora.name} for lora in route.loras],
        "languages": msgspec.to_builtins(route.languages),
    }


def native_models(config: RoutingConfig) -> list[tuple[str, ModelRoute]]:
    """Every catalogue model once, in routing.yaml's order."""
    seen: set[str] = set()
    models: list[tuple[str, ModelRoute]] = []
    for surface in config.surfaces.values():
        for slug, route in surface.models.items():
            if route.inference_types and slug not in seen:
                seen.add(slug)
                models.append((slug, route))
    return models


def render_page(config: RoutingConfig, query: CatalogueQuery, url: str) -> dict[str, Any]:
    """The page body; ``url`` is this route's absolute URL (for the ``links``)."""
    models = [
        model_item(slug, route)
        for slug, route in native_models(config)
        if not query.inference_types or query.inference_types & set(route.inference_types)
    ]
    total = len(models)
    last = max(1, math.ceil(total / query.per_page))
    start = (query.page - 1) * query.per_page

    def link(page: int) -> str:
        params = {"page": page, "per_page": query.per_page}
        if query.inference_types:
            params["filter[inference_types]"] = ",".join(sorted(query.inference_types))  # type: ignore[assignment]
        return f"{url}?{urlencode(params)}"

    return {
        "data": models[start : start + query.per_page],
        "links": {
            "first": link(1),
            "last": link(last),
            "prev": link(query.page - 1) if 1 < query.page <= last + 1 else None,
            "next": link(query.page + 1) if query.page < last else None,
        },
        "meta": {"current_page": query.page, "last_page": last, "per_page": query.per_page, "total": total},
    }
