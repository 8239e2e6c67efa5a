"""GET /api/v1/models/{author}/{slug}/endpoints: the RunPod endpoints serving a model, in
OpenRouter's ``ListEndpointsResponse`` schema.

It shares its path with the mirror of GET /v1/models/{id} (a slug may hold a ``/``, so both are
one ``{path}`` route): a path naming a model is that model, one ending in ``/endpoints`` its list.

``{author}/{slug}`` names a model as OpenRouter does: the whole ``author/slug`` if routing.yaml
has such a slug (or alias), else ``slug`` alone, whatever the author (``canonical_slug`` spells
it ``{owned_by}/{slug}``, but any author finds it: clients copy slugs from elsewhere).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get

from app.errors import ModelNotFound, echo
from app.openai.models import Architecture, Model, Pricing, find_any, model_object
from app.openrouter import docs
from app.routing.schema import EndpointRef
from app.services import Services


class ToolChoice(msgspec.Struct):
    auto: bool
    none: bool
    required: bool
    function: bool


class PublicEndpoint(msgspec.Struct, kw_only=True):
    name: str
    model_id: str
    model_name: str
    context_length: int
    pricing: Pricing
    provider_name: str
    tag: str
    quantization: str | None = None
    max_completion_tokens: int | None = None
    max_prompt_tokens: int | None = None
    supported_parameters: list[str]
    status: int = 0
    uptime_last_30m: float | None = None
    uptime_last_5m: float | None = None
    uptime_last_1d: float | None = None
    latency_last_30m: dict[str, float] | None = None
    throughput_last_30m: dict[str, float] | None = None
    supports_implicit_caching: bool = False
    supports_tool_choice: ToolChoice
    native_tools: dict[str, Any] = {}
    supports_diarization: bool = False
    service_tier: str | None = None
    # The gateway's own: which RunPod endpoint, and how it is weighted among the model's.
    endpoint_id: str
    weight: float
    region: str | None = None
    gpu: str | None = None


class ModelEndpoints(msgspec.Struct, kw_only=True):
    id: str
    name: str
    created: int
    description: str
    architecture: Architecture
    endpoints: list[PublicEndpoint]


class EndpointsResponse(msgspec.Struct):
    data: ModelEndpoints


def _endpoint(ref: EndpointRef, slug: str, name: str, context: int, pricing: Pricing, params: list[str],
              tools: bool) -> PublicEndpoint:
    return PublicEndpoint(
        name=f"{ref.provider} | {slug}", model_id=slug, model_name=name, context_length=context, pricing=pricing,
        provider_name=ref.provider, tag=ref.provider, supported_parameters=params,
        supports_tool_choice=ToolChoice(auto=tools, none=tools, required=tools, function=tools),
        endpoint_id=ref.id, weight=ref.weight, region=ref.region, gpu=ref.gpu,
    )


_SUFFIX = "/endpoints"


@get(
    "/api/v1/models/{model_path:path}",
    summary="Retrieve a model, or list its endpoints",
    description="`/api/v1/models/{id}`: the model (as `GET /v1/models/{id}`). "
    "`/api/v1/models/{author}/{slug}/endpoints`: the RunPod endpoints serving it (routing.yaml `endpoints`, "
    "or its `endpoint_id`) in OpenRouter's schema; `{author}` may be any author, the slug names the model.",
    tags=["openai"],
    responses=docs.RESPONSES,
)
async def model_or_endpoints(model_path: str, request: Request[Any, Any, Any]) -> Model | EndpointsResponse:
    services: Services = request.app.state.services
    name = model_path.lstrip("/")
    found = find_any(services, name)
    if found is not None or not name.endswith(_SUFFIX) or name.count("/") != 2:
        if found is None:
            raise ModelNotFound(f"The model '{echo(name)}' does not exist", param="model")
        surface, slug, route = found
        return model_object(services, surface, slug, route, services.settings.public_url)
    author, slug = name[: -len(_SUFFIX)].split("/")
    return endpoints_of(services, author, slug)


class ModelResponse(msgspec.Struct):
    data: Model


@get(
    "/api/v1/model/{model_path:path}",
    summary="Retrieve a model by author and slug",
    description="OpenRouter's `GET /api/v1/model/{author}/{slug}`: the model wrapped in `data`; as for the "
    "endpoints list, `{author}/{slug}` names it by the whole path or by the slug alone.",
    tags=["openai"],
    responses=docs.RESPONSES,
)
async def model_by_author(model_path: str, request: Request[Any, Any, Any]) -> ModelResponse:
    services: Services = request.app.state.services
    name = model_path.lstrip("/")
    slug = name.split("/", 1)[-1]
    found = find_any(services, name) or find_any(services, slug)
    if found is None:
        raise ModelNotFound(f"The model '{echo(name)}' does not exist", param="model")
    surface, canonical, route = found
    return ModelResponse(model_object(services, surface, canonical, route, services.settings.public_url))


def endpoints_of(services: Services, author: str, slug: str) -> EndpointsResponse:
    found = find_any(services, f"{author}/{slug}") or find_any(services, slug)
    if found is None:
        raise ModelNotFound(f"The model '{echo(f'{author}/{slug}')}' does not exist", param="model")
    surface, canonical, route = found
    model = model_object(services, surface, canonical, route, services.settings.public_url)
    context = model.context_length or 0
    tools = "tools" in model.supported_parameters
    endpoints = [_endpoint(ref, canonical, model.name, context, model.pricing, model.supported_parameters, tools)
                 for ref in route.endpoint_refs]
    return EndpointsResponse(ModelEndpoints(
        id=model.canonical_slug, name=model.name, created=model.created, description=model.description,
        architecture=model.architecture, endpoints=endpoints,
    ))
