"""``POST /api/v1/client/{task}/price-calculation`` and ``GET /api/v1/client/balance``.

A price call takes the task's own fields minus ``webhook_url`` (reference §1.7); what the
seeds' clients leave out there is optional here: the prompt, and any file, which plain sizes
(``width``/``height``, ``duration_seconds``, ``count_text``) may stand in for. Its figure comes
from ``app.billing.quote.quote``, the function native submit holds with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.handlers import HTTPRouteHandler

from app.auth import principal_of
from app.billing.pricing import usd
from app.billing.quote import quote
from app.docs.tags import TAG_NATIVE_UTILITIES
from app.limits import limit_jobs
from app.native.submit import check_request
from app.routing.schema import ModelRoute
from app.services import Services
from app.tasks.common import Side
from app.tasks.embeddings import TXT2EMBEDDING
from app.tasks.images import IMG2IMG, IMG_RMBG, IMG_UPSCALE, TXT2IMG, ImageOnly, Img2Img, Txt2Img
from app.tasks.music import Txt2MusicPrice
from app.tasks.ocr import IMG2TXT
from app.tasks.registry import TASKS
from app.tasks.spec import TaskSpec, Uploads
from app.tasks.speech import Txt2AudioPrice
from app.tasks.transcribe import Link, Transcription
from app.tasks.validation import FieldErrors
from app.tasks.video import Txt2Video

PREFIX = "/api/v1/client"
_OptionalPrompt = Annotated[str, msgspec.Meta(max_length=20_000)]
Check = Callable[[Any, Uploads, ModelRoute], FieldErrors]


# The price calls' own parameters, where they differ from the task's -------------------------


class Txt2ImgPrice(Txt2Img, kw_only=True):
    prompt: _OptionalPrompt = ""


class Img2ImgPrice(Img2Img, kw_only=True):
    prompt: _OptionalPrompt = ""


class ImageSizePrice(ImageOnly, kw_only=True):
    width: Side | None = None
    height: Side | None = None


class VideoPrice(Txt2Video, kw_only=True):
    prompt: _OptionalPrompt = ""


class VideoLinkPrice(Transcription, kw_only=True):
    video_url: Link | None = None


class SpaceLinkPrice(Transcription, kw_only=True):
    audio_url: Link | None = None


# Checks -----------------------------------------------------------------------------------


def _either(field: str, alternative: str) -> Check:
    """A price call must say how much: the file/link ``field`` or ``alternative``."""

    def check(params: Any, uploads: Uploads, route: ModelRoute) -> FieldErrors:
        if getattr(params, field, None) or uploads.get(field) or getattr(params, alternative, None):
            return []
        return [(field, f"The {field} field is required when {alternative} is not present.")]

    return check


def _link_check(spec: TaskSpec, field: str) -> Check:
    def check(params: Any, uploads: Uploads, route: ModelRoute) -> FieldErrors:
        return spec.check(params, uploads, route) if getattr(params, field) else []

    return check


def _speech_check(spec: TaskSpec) -> Check:
    def check(params: Txt2AudioPrice, uploads: Uploads, route: ModelRoute) -> FieldErrors:
        errors = spec.check(params, uploads, route)
        if params.text:
            return errors
        errors = [error for error in errors if error[0] != "text"]  # the length of a text not sent
        if params.count_text is None:
            return [*errors, ("text", "Either text or count_text must be provided.")]
        most = route.info.limits.get("max_text")
        if isinstance(most, int | float) and params.count_text > most:
            errors.append(("count_text", f"The count_text may not be greater than {int(most)}."))
        return errors

    return check


def _price_spec(spec: TaskSpec, params: type[Any] | None = None, check: Check | None = None,
                extra: Check | None = None) -> TaskSpec:
    """``spec`` as its price call sees it: every file optional, and a file left out is not an error."""
    files = tuple(dataclasses.replace(rule, required=False) for rule in spec.files)
    names = {rule.name for rule in spec.files}
    base = check or spec.check

    def price_check(values: Any, uploads: Uploads, route: ModelRoute) -> FieldErrors:
        errors = [e for e in base(values, uploads, route) if e[0] not in names or e[0] in uploads]
        return errors + (extra(values, uploads, route) if extra else [])

    return dataclasses.replace(spec, params=params or spec.params, files=files, check=price_check)


def _price_specs() -> dict[str, TaskSpec]:
    video, link = VideoPrice, _link_check
    specs = {
        "txt2img": _price_spec(TXT2IMG, Txt2ImgPrice),
        "img2img": _price_spec(IMG2IMG, Img2ImgPrice),
        "img-rmbg": _price_spec(IMG_RMBG, ImageSizePrice),
        "img-upscale": _price_spec(IMG_UPSCALE, ImageSizePrice),
        "img2txt": _price_spec(IMG2TXT),
        "txt2audio": _price_spec(TASKS["txt2audio"], Txt2AudioPrice, _speech_check(TASKS["txt2audio"])),
        "txt2music": _price_spec(TASKS["txt2music"], Txt2MusicPrice),
        "txt2video": _price_spec(TASKS["txt2video"], video),
        "img2video": _price_spec(TASKS["img2video"], video),
        "aud2video": _price_spec(TASKS["aud2video"], video),
        "txt2embedding": _price_spec(TXT2EMBEDDING),
        "vid2txt": _price_spec(TASKS["vid2txt"], VideoLinkPrice, link(TASKS["vid2txt"], "video_url"),
                               _either("video_url", "duration_seconds")),
        "aud2txt": _price_spec(TASKS["aud2txt"], SpaceLinkPrice, link(TASKS["aud2txt"], "audio_url"),
                               _either("audio_url", "duration_seconds")),
        "videofile2txt": _price_spec(TASKS["videofile2txt"], extra=_either("video", "duration_seconds")),
        "audiofile2txt": _price_spec(TASKS["audiofile2txt"], extra=_either("audio", "duration_seconds")),
    }
    assert specs.keys() == TASKS.keys(), "every task has a price call"
    return specs


PRICE_SPECS = _price_specs()


async def price_task(request: Request[Any, Any, Any], spec: TaskSpec) -> dict[str, Any]:
    services: Services = request.app.state.services
    principal = principal_of(request)
    await limit_jobs(request, principal)  # a read: the per-key jobs_rpm, not the task's inference windows
    checked = await check_request(request, services, spec)
    priced = quote(spec, checked.params, checked.uploads, checked.route, services.routing.config.billing,
                   principal.tier)
    return {"data": {"price": usd(priced.micro), "currency": "USD"}}


def _price_route(spec: TaskSpec) -> HTTPRouteHandler:
    async def price(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await price_task(request, spec)

    return post(
        f"{PREFIX}/{spec.name}/price-calculation",
        name=f"native-{spec.name}-price",
        operation_id=f"native_{spec.name.replace('-', '_')}_price",
        summary=f"Price a {spec.name} job",
        description=f"What `{spec.name}` with these fields costs, in USD: the amount submit holds from the "
        "balance. Takes the task's fields (no `webhook_url`); files are optional where plain sizes stand in "
        "for them. Answers `{\"data\": {\"price\", \"currency\": \"USD\"}}`.",
        tags=[TAG_NATIVE_UTILITIES],
        status_code=200,
        request_max_body_size=81 * 1024 * 1024,
    )(price)


@get(
    f"{PREFIX}/balance",
    summary="The key's balance",
    description="`{\"data\": {\"balance\": <USD>, \"currency\": \"USD\"}}`; a key never billed has the "
    "sign-up balance (`billing.initial_balance_usd`).",
    tags=[TAG_NATIVE_UTILITIES],
)
async def balance(request: Request[Any, Any, Any]) -> dict[str, Any]:
    services: Services = request.app.state.services
    principal = principal_of(request)
    micro = await services.ledger.balance(principal.key_id)
    return {"data": {"balance": usd(micro), "currency": "USD"}}


PRICE_ROUTES: list[Any] = [*(_price_route(spec) for spec in PRICE_SPECS.values()), balance]
