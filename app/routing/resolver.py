"""Resolve a request's (surface, model) to the RunPod endpoint that serves it."""

from __future__ import annotations

import msgspec

from app.errors import InvalidRequest, MissingEndpoint, ModelNotFound, NotFound, Unavailable, echo
from app.routing.health import HealthBoard
from app.routing.preferences import DEFAULT_PREFS, ProviderPrefs
from app.routing.schema import ModelRoute, Policy, RoutingConfig, Surface, SurfaceConfig
from app.routing.selection import Choice, choose

_VARIANTS = (":nitro", ":floor")


class NoMatchingEndpoint(NotFound):
    """``provider.only``/``ignore`` left none of a model's endpoints (OpenRouter answers 404 too)."""

    default_code = "no_matching_endpoint"


class Route(msgspec.Struct, frozen=True, kw_only=True):
    surface: Surface
    public_model: str
    upstream_model: str
    endpoint_id: str
    base_url: str
    api_key: str
    mode: str
    sync_timeout_s: float
    policy: Policy
    pass_through: tuple[str, ...] = ()
    # The endpoint's name for OpenRouter's ``provider`` field and preferences (its id by default).
    provider: str = ""

    @property
    def endpoint_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.endpoint_id}"


def find_model(surface: SurfaceConfig, name: str) -> tuple[str, ModelRoute] | None:
    """The canonical slug and route for a slug or alias."""
    route = surface.models.get(name)
    if route is not None:
        return name, route
    for slug, candidate in surface.models.items():
        if name in candidate.aliases:
            return slug, candidate
    return None


class ModelRoutes(msgspec.Struct, frozen=True):
    """A model's endpoints as Routes, best first; the first ``ready`` are not cooling."""

    routes: list[Route]
    ready: int


def resolve_model(
    config: RoutingConfig,
    surface: Surface,
    model: str | None,
    *,
    local_upstream: str | None = None,
    board: HealthBoard | None = None,
    prefs: ProviderPrefs = DEFAULT_PREFS,
) -> ModelRoutes:
    """Every endpoint that may serve ``model``, in the order to try them (app/routing/selection.py)."""
    surface_cfg = config.surfaces.get(surface)
    if surface_cfg is None or not surface_cfg.models:
        raise MissingEndpoint(surface)
    name = model or surface_cfg.default_model
    if not name:
        raise InvalidRequest("you must provide a model parameter", param="model", code="missing_model")
    found = find_model(surface_cfg, name)
    if found is None and name.endswith(_VARIANTS):
        # OpenRouter's shortcuts: ``model:nitro`` sorts endpoints by throughput, ``model:floor`` by price.
        base, _, variant = name.rpartition(":")
        found = find_model(surface_cfg, base)
        if found is not None and prefs.sort is None:
            prefs = msgspec.structs.replace(prefs, sort="throughput" if variant == "nitro" else "price")
    if found is None:
        raise ModelNotFound(f"The model '{echo(name)}' does not exist or is not served on {surface}", param="model")
    slug, route = found

    def make(endpoint_id: str, provider: str, base_url: str, api_key: str) -> Route:
        return Route(
            surface=surface,
            public_model=slug,
            upstream_model=route.upstream_model or slug,
            endpoint_id=endpoint_id,
            base_url=base_url,
            api_key=api_key,
            mode=surface_cfg.mode,
            sync_timeout_s=surface_cfg.sync_timeout_s,
            policy=surface_cfg.policy,
            pass_through=tuple(route.pass_through),
            provider=provider,
        )

    if local_upstream is not None:
        if not route.local_endpoint:
            raise MissingEndpoint(surface)
        return ModelRoutes([make(route.local_endpoint, route.local_endpoint, local_upstream, "")], 1)
    refs = route.endpoint_refs
    if not refs:
        raise MissingEndpoint(surface)
    base_url = route.base_url or config.upstream.base_url
    api_key = config.upstream.api_key
    if not api_key and route.base_url is None:
        raise Unavailable(
            "RunPod API key is not configured (set RUNPOD_API_KEY)", code="missing_api_key", retryable=False
        )
    chosen = Choice(list(refs), len(refs)) if board is None else choose(refs, board, prefs)
    if not chosen.endpoints:
        raise NoMatchingEndpoint(
            f"No endpoint of model '{slug}' matches the request's provider preferences", param="provider"
        )
    return ModelRoutes([make(ref.id, ref.provider, base_url, api_key) for ref in chosen.endpoints], chosen.ready)


def resolve(
    config: RoutingConfig,
    surface: Surface,
    model: str | None,
    *,
    local_upstream: str | None = None,
    board: HealthBoard | None = None,
    prefs: ProviderPrefs = DEFAULT_PREFS,
) -> Route:
    """The route for one attempt: the best endpoint (weight and health with ``board``, else the
    first); ``local_upstream`` (serve --local) sends each model to its local endpoint."""
    return resolve_model(
        config, surface, model, local_upstream=local_upstream, board=board, prefs=prefs
    ).routes[0]
