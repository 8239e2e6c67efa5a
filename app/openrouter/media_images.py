"""POST /api/v1/images: OpenRouter's image generation body over the images surface.

The body becomes the same ``txt2img`` task the OpenAI route builds (``app/openai/images.py``:
its hold, its run and its settlement), or with ``input_references`` the ``img2img`` task of
``/v1/images/edits`` (the files checked and staged alike); always answered at once with the
images as base64, because OpenRouter's image API has no async or URL form.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar import Request, Response, post

from app.docs.tags import TAG_OPENAI
from app.errors import InvalidRequest
from app.jobs.runner import Call
from app.limits import rate_headers
from app.openai._request import admit, decode_object, validate
from app.openai.bounds import INT64_MAX, check_values
from app.openai.images import hold_images, run_images
from app.openai.tasks import passed_through, task_input
from app.openrouter import media_sizes
from app.openrouter.media_docs import SUBMIT_ERRORS
from app.routing.resolver import Route, find_model
from app.services import Services
from app.tasks.file_values import read_file_value
from app.tasks.images import IMG2IMG, TXT2IMG, Img2Img, Txt2Img
from app.tasks.media_sniff import sniff
from app.tasks.uploads import CONTENT_TYPES, check_files, stage

# A reference image is capped like an uploaded /v1/images/edits image.
_REFERENCE_MAX_BYTES = next(rule.max_bytes for rule in IMG2IMG.files if rule.name == "images")

PATH = "/api/v1/images"
P = TypeVar("P", bound=Txt2Img)


class ImageURL(msgspec.Struct):
    url: Annotated[str, msgspec.Meta(min_length=1)]


class ContentPartImage(msgspec.Struct):
    image_url: ImageURL
    type: Literal["image_url"] = "image_url"


class ImageGenerationRequest(msgspec.Struct):
    """OpenRouter's ``ImageGenerationRequest``; routing and tracing keys are accepted and unused."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
    n: Annotated[int, msgspec.Meta(ge=1, le=8)] | None = None
    size: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    aspect_ratio: Annotated[str, msgspec.Meta(max_length=16)] | None = None
    resolution: Literal["512", "768", "1K", "1.5K", "2K", "4K"] | None = None
    seed: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)] | None = None
    # What the worker writes is reported per image as ``media_type``; these are not converted.
    output_format: Literal["png", "jpeg", "webp", "svg"] | None = None
    output_compression: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None
    quality: str | None = None
    background: str | None = None
    input_references: Annotated[list[ContentPartImage], msgspec.Meta(max_length=8)] | None = None
    stream: bool | None = None


def _dimensions(services: Services, route: Route, parsed: ImageGenerationRequest) -> dict[str, int]:
    found = find_model(services.routing.config.surfaces["images"], route.public_model)
    aspect = media_sizes.ratio(parsed.aspect_ratio)
    tier: str | None = parsed.resolution
    if parsed.size is not None and parsed.size != "auto":
        explicit = media_sizes.pixels(parsed.size)
        if explicit is not None:
            media_sizes.check_pixels_agree(*explicit, tier_long=media_sizes.IMAGE_TIERS.get(tier or ""),
                                           aspect=aspect)
            return {"width": explicit[0], "height": explicit[1]}
        if parsed.size not in media_sizes.IMAGE_TIERS:
            raise InvalidRequest("size must be a tier (1K, 2K, 4K) or WIDTHxHEIGHT, e.g. 1024x1024", param="size")
        tier = parsed.size
    if found is None:  # a model outside the catalogue: sizes in pixels only
        return {}
    long = media_sizes.IMAGE_TIERS[tier] if tier else None
    chosen = media_sizes.sides(found[1], long=long, aspect=aspect)
    return {"width": chosen[0], "height": chosen[1]} if chosen else {}


def _params(kind: type[P], route: Route, parsed: ImageGenerationRequest, size: dict[str, int]) -> P:
    return kind(model=route.public_model, prompt=parsed.prompt, seed=parsed.seed, num_images=parsed.n,
                width=size.get("width"), height=size.get("height"))


async def _reference(services: Services, index: int, part: ContentPartImage) -> bytes:
    """A reference image: a data URI, base64, or an http(s) URL the gateway fetches (SSRF-checked)."""
    param = f"input_references.{index}.image_url.url"
    read = await read_file_value(part.image_url.url, param, _REFERENCE_MAX_BYTES, services.settings.media_allowlist)
    if isinstance(read, str):
        raise InvalidRequest(read, param=param)
    return read


def _usage(usage: Any) -> dict[str, Any] | None:
    """OpenRouter's image usage (token counts are required; images have none) from OpenAI's."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens", usage.get("input_tokens", 0))
    completion = usage.get("completion_tokens", usage.get("output_tokens", 0))
    shaped: dict[str, Any] = {
        "prompt_tokens": prompt if isinstance(prompt, int) else 0,
        "completion_tokens": completion if isinstance(completion, int) else 0,
    }
    shaped["total_tokens"] = shaped["prompt_tokens"] + shaped["completion_tokens"]
    if isinstance(usage.get("cost"), int | float):
        shaped["cost"] = usage["cost"]
    return shaped


def to_openrouter(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's b64 images body as OpenRouter's: each image gains its sniffed ``media_type``."""
    data = []
    for item in body.get("data") or []:
        encoded = str(item.get("b64_json", ""))
        kind = sniff(base64.b64decode(encoded[:88]))  # 88 characters: the first 64 bytes
        data.append({"b64_json": encoded} | ({"media_type": CONTENT_TYPES[kind]} if kind in CONTENT_TYPES else {}))
    shaped: dict[str, Any] = {"created": body.get("created"), "data": data}
    usage = _usage(body.get("usage"))
    if usage is not None:
        shaped["usage"] = usage
    return shaped


@post(
    PATH,
    summary="Generate images (OpenRouter)",
    description="OpenRouter's image generation: `prompt`, `model`, `n`, `size` (a tier or WIDTHxHEIGHT), "
    "`aspect_ratio`, `resolution`, `seed`; answers `{created, data: [{b64_json, media_type}]}` at once.",
    tags=[TAG_OPENAI],
    status_code=200,
    middleware=[rate_headers],
    responses=SUBMIT_ERRORS,
)
async def openrouter_images(request: Request[Any, Any, Any]) -> Response[Any]:
    services, principal = await admit(request, "images")
    body = decode_object(await request.body())
    parsed = validate(body, ImageGenerationRequest)
    check_values(body)  # pass_through fields reach the worker as sent
    route = services.resolve("images", parsed.model)
    size = _dimensions(services, route, parsed)
    call = Call(services, request, principal, route)
    if parsed.input_references:
        images = [await _reference(services, index, part) for index, part in enumerate(parsed.input_references)]
        uploads, errors = check_files(IMG2IMG, {"images": images})
        if errors:
            raise InvalidRequest(errors[0][1].replace("images", "input_references"), param="input_references")
        urls = await stage(services.files, {"images": images}, uploads)
        staged = {"image": urls["images"]} if len(images) == 1 else urls  # as /v1/images/edits hands them over
        edit = _params(Img2Img, route, parsed, size)
        job_input = task_input(services, IMG2IMG, edit, route, staged, uploads) | passed_through(body, route)
        billing = await hold_images(call, IMG2IMG, edit, uploads)
    else:
        params = _params(Txt2Img, route, parsed, size)
        job_input = task_input(services, TXT2IMG, params, route, {}) | passed_through(body, route)
        billing = await hold_images(call, TXT2IMG, params, {})
    answered = await run_images(call, job_input, "b64_json", size, billing)
    shaped = to_openrouter(msgspec.json.decode(answered.content))
    return Response(content=msgspec.json.encode(shaped), media_type="application/json")
