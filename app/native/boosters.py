"""The prompt boosters (``/api/v1/client/prompt/*``) and sample prompts: synchronous answers
from a chat model, in the shapes the seeds show (reference §5), with their price calls.

A booster is a chat request, so it is priced and paid like one: held for its estimated tokens
when billing is on, settled on the tokens the worker reports.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.handlers import HTTPRouteHandler

from app.auth import Principal, principal_of
from app.billing import charge
from app.billing.pricing import price_micro_usd, usd
from app.billing.quote import Unpriceable, tier_multiplier
from app.docs.tags import TAG_NATIVE_UTILITIES
from app.errors import FieldsInvalid, UpstreamError
from app.limits import limit_request
from app.native.body import read_task_body
from app.routing.resolver import Route, find_model
from app.services import Services
from app.tasks.boosters import (
    MAX_TOKENS,
    BoosterParams,
    SampleParams,
    booster_messages,
    parse_answer,
    sample_messages,
)
from app.tasks.common import TaskParams
from app.tasks.embeddings import estimated_tokens
from app.tasks.spec import IMAGE_FORMATS, MB, FileRule, TaskSpec, Upload
from app.tasks.uploads import check_files, stage
from app.tasks.validation import convert_fields

PREFIX = "/api/v1/client"
# kind → its image: required (True), optional (False) or not taken (None).
_BOOSTERS = {"image": None, "video": False, "speech": None, "image2image": True}
_IMAGE_TOKENS = 1024  # what a vision model's image part is held as, before it counts


def _chat_route(services: Services, *, sees: bool) -> Route:
    """The chat surface's default model; one that serves OCR (it sees) when an image comes along."""
    surface = services.routing.config.surfaces.get("chat")
    model = None
    if sees and surface is not None:
        model = next((slug for slug, m in surface.models.items() if "img2txt" in m.inference_types), None)
    return services.resolve("chat", model)


def _quantities(messages: list[dict[str, Any]], *, sees: bool) -> dict[str, float]:
    text = msgspec.json.encode(messages).decode()
    # A model may price by tokens (chat) or by output characters (an OCR model that sees).
    return {"input_tokens": float(estimated_tokens(text) + (_IMAGE_TOKENS if sees else 0)),
            "output_tokens": float(MAX_TOKENS), "output_chars": float(MAX_TOKENS * 4)}


def _price(services: Services, principal: Principal, route: Route, quantities: dict[str, float]) -> float:
    config = services.routing.config
    surface = config.surfaces.get("chat")
    found = find_model(surface, route.public_model) if surface is not None else None
    rules = found[1].pricing_rules if found is not None else ()
    try:
        return usd(price_micro_usd(rules, quantities, multiplier=tier_multiplier(config.billing, principal.tier)))
    except ValueError:
        raise Unpriceable([("model", "The booster's model cannot be priced for this request.")]) from None


async def _ask(
    services: Services, principal: Principal, messages: list[dict[str, Any]], *, sees: bool, task: str
) -> str:
    route = _chat_route(services, sees=sees)
    body = {"model": route.upstream_model, "messages": messages, "response_format": {"type": "json_object"},
            "temperature": 0.7, "max_tokens": MAX_TOKENS}
    billing = await charge.hold_for(services, principal, route, _quantities(messages, sees=sees), task=task)
    content = await charge.paid(services, principal.key_id, billing,
                                services.client.openai_json(route, "chat/completions", body, route.sync_timeout_s))
    try:
        completion = msgspec.json.decode(content)
        answer = str(completion["choices"][0]["message"]["content"] or "")
    except (msgspec.DecodeError, KeyError, IndexError, TypeError):
        if billing is not None:
            await charge.release(services, principal.key_id, billing)
        raise UpstreamError("The chat worker's answer is not a chat completion", code="upstream_bad_response") from None
    await charge.settle_output(services, principal.key_id, route, billing, completion)
    return answer


def _spec(kind: str, image: bool | None, *, pricing: bool = False) -> TaskSpec:
    required = bool(image) and not pricing  # a price call may leave the image out
    files = () if image is None else (FileRule("image", IMAGE_FORMATS, 10 * MB, required=required),)
    return TaskSpec(f"prompt/{kind}", "chat", "", TaskParams, files=files)


async def _read(
    request: Request[Any, Any, Any], spec: TaskSpec
) -> tuple[BoosterParams, dict[str, list[bytes]], dict[str, list[Upload]]]:
    """A booster's fields and image, every bad field named in one 422."""
    body = await read_task_body(request, spec)
    params, errors = convert_fields(BoosterParams, body.fields)
    uploads, file_errors = check_files(spec, body.files)
    errors = body.errors + errors + file_errors
    if errors or params is None:
        raise FieldsInvalid(errors)
    return params, body.files, uploads


def _booster_route(kind: str, image: bool | None) -> HTTPRouteHandler:
    spec = _spec(kind, image)

    async def boost(request: Request[Any, Any, Any]) -> dict[str, Any]:
        services: Services = request.app.state.services
        principal = principal_of(request)
        await limit_request(request, principal, "chat")
        params, files, uploads = await _read(request, spec)
        urls = await stage(services.files, files, uploads)
        image_url = urls["image"][0] if urls.get("image") else None
        messages = booster_messages(kind, params, image_url)
        answer = parse_answer(await _ask(services, principal, messages, sees=bool(image_url), task=spec.name))
        return {"prompt": answer["prompt"]} if kind == "speech" else answer

    return post(
        f"{PREFIX}/prompt/{kind}",
        name=f"native-prompt-{kind}",
        operation_id=f"native_prompt_{kind.replace('2', '_to_')}",
        summary=f"Improve a {kind} prompt",
        description="A chat model rewrites the prompt (JSON answer; plain text counts as the prompt).",
        tags=[TAG_NATIVE_UTILITIES],
        status_code=200,
        request_max_body_size=11 * MB,
    )(boost)


def _booster_price_route(kind: str, image: bool | None) -> HTTPRouteHandler:
    spec = _spec(kind, image, pricing=True)

    async def price(request: Request[Any, Any, Any]) -> dict[str, Any]:
        services: Services = request.app.state.services
        principal = principal_of(request)
        await limit_request(request, principal, None, "price-calculation")
        params, _, uploads = await _read(request, spec)
        sees = bool(uploads.get("image")) or bool(image)
        messages = booster_messages(kind, params, "https://example.invalid/image" if sees else None)
        route = _chat_route(services, sees=sees)
        return {"data": {"price": _price(services, principal, route, _quantities(messages, sees=sees)),
                         "currency": "USD"}}

    return post(
        f"{PREFIX}/prompt/{kind}/price-calculation",
        name=f"native-prompt-{kind}-price",
        operation_id=f"native_prompt_{kind.replace('2', '_to_')}_price",
        summary=f"Price of improving a {kind} prompt",
        description="What the booster would hold for the same fields (its chat model's token prices).",
        tags=[TAG_NATIVE_UTILITIES],
        status_code=200,
        request_max_body_size=11 * MB,
    )(price)


@get(
    f"{PREFIX}/prompts/samples",
    summary="Generate a sample prompt",
    description="`type`: `text2image` or `text2speech` (`image`/`speech` accepted); optional `topic`, `lang_code`.",
    tags=[TAG_NATIVE_UTILITIES],
)
async def sample_prompt(request: Request[Any, Any, Any]) -> dict[str, Any]:
    services: Services = request.app.state.services
    principal = principal_of(request)
    await limit_request(request, principal, "chat")
    params, errors = convert_fields(SampleParams, dict(request.query_params))
    if errors or params is None:
        raise FieldsInvalid(errors)
    answer = parse_answer(await _ask(services, principal, sample_messages(params), sees=False, task="prompts/samples"))
    kind = "text2image" if params.type in ("text2image", "image") else "text2speech"
    return {"success": True, "data": {"type": kind, "prompt": answer["prompt"]}}


@get(
    f"{PREFIX}/prompts/samples/price-calculation",
    summary="Price of a sample prompt",
    description="What `prompts/samples` would hold for the same query.",
    tags=[TAG_NATIVE_UTILITIES],
)
async def sample_price(request: Request[Any, Any, Any]) -> dict[str, Any]:
    services: Services = request.app.state.services
    principal = principal_of(request)
    await limit_request(request, principal, None, "price-calculation")
    params, errors = convert_fields(SampleParams, dict(request.query_params))
    if errors or params is None:
        raise FieldsInvalid(errors)
    route = _chat_route(services, sees=False)
    price = _price(services, principal, route, _quantities(sample_messages(params), sees=False))
    return {"data": {"price": price, "currency": "USD"}}


BOOSTER_ROUTES: list[Any] = [
    *(_booster_route(kind, image) for kind, image in _BOOSTERS.items()),
    *(_booster_price_route(kind, image) for kind, image in _BOOSTERS.items()),
    sample_prompt,
    sample_price,
]
