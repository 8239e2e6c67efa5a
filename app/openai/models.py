"""GET /v1/models and /v1/models/{id}: the public slugs routing.yaml serves.

Each item is a superset of OpenAI's model object and OpenRouter's (both SDKs validate it):
filled from the model's routing.yaml keys, per-surface defaults where absent, and its pricing
rules as OpenRouter's per-token/per-image/per-request USD strings. ``canonical_slug`` is
``{owned_by}/{slug}``, the ``{author}/{slug}`` of OpenRouter's model routes.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get

from app import docs
from app.errors import ModelNotFound, echo
from app.routing.resolver import find_model
from app.routing.schema import ModelRoute, PricingRule, Surface
from app.services import Services


class Architecture(msgspec.Struct):
    modality: str
    input_modalities: list[str]
    output_modalities: list[str]
    tokenizer: str = "Other"
    instruct_type: str | None = None


class Pricing(msgspec.Struct, omit_defaults=True):
    """USD per unit, as decimal strings (OpenRouter's convention); absent: not priced that way."""

    prompt: str
    completion: str
    request: str | None = None
    image: str | None = None


class TopProvider(msgspec.Struct):
    context_length: int | None
    max_completion_tokens: int | None = None
    is_moderated: bool = False


class Links(msgspec.Struct):
    details: str


class Model(msgspec.Struct, kw_only=True):
    id: str
    object: str
    created: int
    owned_by: str
    surface: str
    canonical_slug: str
    name: str
    description: str
    context_length: int | None
    architecture: Architecture
    pricing: Pricing
    top_provider: TopProvider
    per_request_limits: dict[str, float] | None
    supported_parameters: list[str]
    default_parameters: dict[str, Any] | None
    supported_voices: list[str] | None
    links: Links


class ListLinks(msgspec.Struct):
    next: str | None = None


class ModelList(msgspec.Struct):
    object: str
    data: list[Model]
    total_count: int
    links: ListLinks


_CHAT_PARAMETERS = [
    "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed", "presence_penalty",
    "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "tools", "tool_choice", "response_format",
]
# Per surface, where routing.yaml says nothing: (input, output) modalities, context length, parameters.
SURFACE_DEFAULTS: dict[str, tuple[list[str], list[str], int | None, list[str]]] = {
    "chat": (["text"], ["text"], 8192, _CHAT_PARAMETERS),
    "embeddings": (["text"], ["embeddings"], 512, ["dimensions", "encoding_format"]),
    "images": (["text", "image"], ["image"], None, ["size", "n", "response_format", "seed"]),
    "transcribe": (["audio"], ["transcription"], None, ["language", "prompt", "response_format", "temperature"]),
    "speech": (["text"], ["speech"], None, ["voice", "speed", "response_format"]),
    "music": (["text"], ["audio"], None, []),
    "video": (["text", "image"], ["video"], None, []),
}
_DESCRIPTIONS = {
    "chat": "Chat completions", "embeddings": "Text embeddings", "images": "Image generation and editing",
    "transcribe": "Speech to text", "speech": "Text to speech", "music": "Music generation",
    "video": "Video generation",
}


def usd_text(value: float) -> str:
    """A USD figure as OpenRouter writes prices: a plain decimal, never exponent notation."""
    text = f"{value:.12f}".rstrip("0").rstrip(".")
    return text or "0"


def public_pricing(rules: tuple[PricingRule, ...]) -> Pricing:
    """The rules as OpenRouter's unit prices. A rule scaling with tokens alone is a per-token
    price, with ``images`` alone a per-image one, a flat rule a per-request one; any other rule
    (pixels, steps, seconds...) adds its reference request's price to ``request``."""
    prompt = completion = request = image = 0.0
    has_request = has_image = False
    for rule in rules:
        per = dict(rule.per)
        if len(per) == 1 and not rule.inverse:
            (quantity, reference), = per.items()
            unit = rule.usd / reference
            if quantity in ("input_tokens", "tokens"):
                prompt += unit
                continue
            if quantity == "output_tokens":
                completion += unit
                continue
            if quantity == "images":
                image, has_image = image + unit, True
                continue
        request, has_request = request + rule.usd, True
    return Pricing(
        prompt=usd_text(prompt), completion=usd_text(completion),
        request=usd_text(request) if has_request else None, image=usd_text(image) if has_image else None,
    )


def _voices(route: ModelRoute) -> list[str] | None:
    voices = sorted({voice.slug for language in route.languages for voice in language.voices})
    return voices or None


def model_object(services: Services, surface: str, slug: str, route: ModelRoute, public_url: str) -> Model:
    inputs, outputs, context, parameters = SURFACE_DEFAULTS.get(surface, (["text"], ["text"], None, []))
    if route.modalities is not None:
        inputs, outputs = route.modalities.input, route.modalities.output
    context_length = route.context_length or context
    canonical = f"{route.owned_by}/{slug}"
    return Model(
        id=slug,
        object="model",
        created=int(services.routing.loaded_at),
        owned_by=route.owned_by,
        surface=surface,
        canonical_slug=canonical,
        name=route.name or slug,
        description=route.description or f"{_DESCRIPTIONS.get(surface, surface)} on dryAPI's RunPod workers",
        context_length=context_length,
        architecture=Architecture(f"{'+'.join(inputs)}->{'+'.join(outputs)}", list(inputs), list(outputs)),
        pricing=public_pricing(route.pricing_rules),
        top_provider=TopProvider(context_length=context_length),
        per_request_limits=None,
        supported_parameters=list(route.supported_parameters if route.supported_parameters is not None
                                  else parameters),
        default_parameters=None,
        supported_voices=_voices(route),
        links=Links(f"{public_url.rstrip('/')}/api/v1/models/{canonical}/endpoints"),
    )


def _models(services: Services) -> list[Model]:
    seen: set[str] = set()
    models: list[Model] = []
    public_url = services.settings.public_url
    for surface, config in services.routing.config.surfaces.items():
        for slug, route in config.models.items():
            if slug not in seen:
                seen.add(slug)
                models.append(model_object(services, surface, slug, route, public_url))
    return models


def find_any(services: Services, name: str) -> tuple[Surface, str, ModelRoute] | None:
    """(surface, canonical slug, route) for a slug or alias on any surface."""
    for surface, config in services.routing.config.surfaces.items():
        found = find_model(config, name)
        if found is not None:
            return surface, found[0], found[1]
    return None


@get(
    "/v1/models",
    summary="List models",
    description="The public model slugs routing.yaml serves, on every surface: OpenAI's model list, each "
    "item also OpenRouter's model object (architecture, pricing, context length...).",
    tags=["openai"],
    responses=docs.MODEL_RESPONSES,
)
async def list_models(request: Request[Any, Any, Any]) -> ModelList:
    models = _models(request.app.state.services)
    return ModelList("list", models, len(models), ListLinks())


@get(
    "/v1/models/{model_id:path}",
    summary="Retrieve a model",
    description="One model by slug or alias; 404 `model_not_found` otherwise.",
    tags=["openai"],
    responses=docs.MODEL_RESPONSES,
)
async def retrieve_model(model_id: str, request: Request[Any, Any, Any]) -> Model:
    services: Services = request.app.state.services
    name = model_id.lstrip("/")
    found = find_any(services, name)
    if found is None:
        raise ModelNotFound(f"The model '{echo(name)}' does not exist", param="model")
    surface, slug, route = found
    return model_object(services, surface, slug, route, services.settings.public_url)
