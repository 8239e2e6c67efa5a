"""POST /v1/images/generations and /v1/images/edits: OpenAI's bodies over the images tasks.

The request becomes the same task parameters a native ``txt2img``/``img2img`` request builds
(``app/tasks/images.py``), checked against the model's published limits and turned into the
worker's input there; this module only speaks OpenAI's words on both ends.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import UploadFile

from app import docs, generations
from app.billing import charge
from app.billing.pricing import usd
from app.errors import InvalidRequest, UpstreamError
from app.files import decode_data_uri
from app.jobs.runner import Call, run_sync
from app.limits import rate_headers
from app.multipart import read_form
from app.openai import complete
from app.openai._request import admit, choose_mode, decode_object, validate
from app.openai.bounds import INT64_MAX, check_values
from app.openai.enqueue import enqueue
from app.openai.handler_fields import IMAGES_FIELDS
from app.openai.tasks import passed_through, task_input, validate_form
from app.openai.webhook_field import checked_webhook_url, job_webhook_url
from app.routing.preferences import take_wishes
from app.routing.resolver import Route, find_model
from app.services import Services
from app.tasks.images import IMG2IMG, TXT2IMG, Img2Img, Txt2Img
from app.tasks.spec import TaskSpec, Uploads
from app.tasks.uploads import check_files, stage
from app.usage import image_counts, record

_SIZE = re.compile(r"^(?P<w>\d{2,5})x(?P<h>\d{2,5})$")
MAX_SIDE = 4096
_MAX_FETCH_BYTES = 10 * 1024 * 1024
EDIT_BODY_LIMIT = 4 * 10 * 1024 * 1024 + 1024 * 1024  # up to four 10 MB images and the fields


class EditRequest(msgspec.Struct):
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
    model: str | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=8)] | None = None
    size: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    webhook_url: str | None = None


class ImagesRequest(msgspec.Struct):
    prompt: Annotated[str, msgspec.Meta(min_length=1)]
    model: str | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=8)] | None = None
    size: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    negative_prompt: str | None = None
    seed: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)] | None = None
    steps: Annotated[int, msgspec.Meta(ge=1, le=200)] | None = None
    guidance_scale: Annotated[float, msgspec.Meta(ge=0, le=50)] | None = None
    webhook_url: str | None = None


def parse_size(size: str | None) -> dict[str, int]:
    if size is None or size == "auto":
        return {}
    match = _SIZE.match(size)
    if not match:
        raise InvalidRequest("size must look like WIDTHxHEIGHT, e.g. 1024x1024", param="size")
    width, height = int(match.group("w")), int(match.group("h"))
    if not (64 <= width <= MAX_SIDE and 64 <= height <= MAX_SIDE):
        raise InvalidRequest(f"size sides must be between 64 and {MAX_SIDE}", param="size")
    return {"width": width, "height": height}


def _image_items(output: Any) -> list[str]:
    if isinstance(output, list) and len(output) == 1:
        output = output[0]
    images = output.get("images") if isinstance(output, dict) else None
    if not isinstance(images, list) or not images:
        raise UpstreamError("The worker returned no images", code="upstream_bad_response")
    items: list[str] = []
    for image in images:
        if isinstance(image, dict):  # comfyui-style {"type", "data"}
            image = image.get("data") or image.get("url")
        if not isinstance(image, str) or not image:
            raise UpstreamError("The worker returned an image in an unknown form", code="upstream_bad_response")
        items.append(image)
    return items


async def to_openai(services: Services, output: Any, response_format: str) -> dict[str, Any]:
    """OpenAI's images response from a handler's ``{"images": [...]}`` output."""
    data: list[dict[str, str]] = []
    for item in _image_items(output):
        is_url = item.startswith(("http://", "https://"))
        decoded = None if is_url else decode_data_uri(item) or ("image/png", _plain_base64(item))
        if response_format == "url":
            if is_url:
                data.append({"url": item})
                continue
            if not services.files.enabled:
                raise InvalidRequest(
                    "response_format=url needs signed file URLs, which are off (DRYAPI_FILE_TTL_S=0); "
                    "ask for b64_json",
                    param="response_format",
                )
            assert decoded is not None
            data.append({"url": await services.files.put(decoded[1], decoded[0])})
        elif is_url:
            data.append({"b64_json": base64.b64encode(await _fetch(services, item)).decode("ascii")})
        else:
            assert decoded is not None
            data.append({"b64_json": base64.b64encode(decoded[1]).decode("ascii")})
    return {"created": int(time.time()), "data": data}


def _plain_base64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise UpstreamError("The worker returned an image that is not base64", code="upstream_bad_response") from None


async def _fetch(services: Services, url: str) -> bytes:
    response = await services.client.request("GET", url, "")
    if response.status != 200 or len(response.content) > _MAX_FETCH_BYTES:
        raise UpstreamError("Could not fetch the image the worker produced", code="upstream_media")
    return response.content


@post(
    "/v1/images/generations",
    summary="Generate images",
    description="OpenAI image generation; `url` results are signed gateway links valid for DRYAPI_FILE_TTL_S. "
    + docs.ASYNC_NOTE,
    tags=["openai"],
    status_code=200,
    middleware=[rate_headers],
    operation_class=docs.IMAGES_OPERATION,
    responses=docs.IMAGES_RESPONSES,
)
async def generate_images(request: Request[Any, Any, Any]) -> Response[Any]:
    services, principal = await admit(request, "images")
    raw = await request.body()
    body = decode_object(raw)
    parsed = validate(body, ImagesRequest)
    check_values(body)  # pass_through fields reach the worker as sent
    wishes = take_wishes(body)  # models/route/provider: the gateway's, never the worker's
    size = parse_size(parsed.size)
    webhook_url = await checked_webhook_url(services, parsed.webhook_url)
    response_format = parsed.response_format or "url"

    async def attempt(route: Route, last: bool) -> tuple[Response[Any] | Any, Call, dict[str, Any] | None]:
        params = Txt2Img(
            model=route.public_model,
            prompt=parsed.prompt,
            negative_prompt=parsed.negative_prompt,
            seed=parsed.seed,
            steps=parsed.steps,
            guidance=parsed.guidance_scale,
            num_images=parsed.n,
            width=size.get("width"),
            height=size.get("height"),
        )
        job_input = task_input(services, TXT2IMG, params, route, {}) | passed_through(body, route)
        call = Call(services, request, principal, route)
        mode = choose_mode(request, route, stream=False, webhook_url=webhook_url)
        billing = await hold_images(call, TXT2IMG, params, {})
        if mode == "async":
            return await charge.paid_enqueue(services, principal.key_id, billing, enqueue(
                call,
                job_input,
                webhook_url=await job_webhook_url(services, principal, webhook_url),
                digest=hashlib.sha256(raw).hexdigest(),
                # The size travels with the job so usage can count its pixels when it finishes.
                options={"response_format": response_format, "size": size} | _billed(billing),
            )), call, billing
        options = {"response_format": response_format} | _billed(billing)
        work = run_sync(call, job_input, options, IMAGES_FIELDS)
        output = await charge.paid(services, principal.key_id, billing, work)
        return _Output(output), call, billing

    # A job past its sync wait keeps running upstream (and is followed): timeouts never fall back.
    _, (answer, call, billing) = await services.serve("images", wishes, attempt, timeouts=False)
    if isinstance(answer, _Output):
        return await _finish(call, answer.value, response_format, size, billing)
    return answer  # type: ignore[no-any-return]


class _Output:
    """A sync job's output, told apart from an async answer."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


async def hold_images(call: Call, spec: TaskSpec, params: Txt2Img, uploads: Uploads) -> dict[str, Any] | None:
    """Billing on: hold the task's price (its quantities, as a native submit would)."""
    model = find_model(call.services.routing.config.surfaces["images"], call.route.public_model)
    quantities = spec.quantities(params, uploads, model[1]) if model is not None else {}
    return await charge.hold_for(call.services, call.principal, call.route, quantities, task=spec.name)


def _billed(billing: dict[str, Any] | None) -> dict[str, Any]:
    return {"billing": billing} if billing is not None else {}


async def run_images(
    call: Call, job_input: dict[str, Any], response_format: str, size: dict[str, int], billing: dict[str, Any] | None
) -> Response[Any]:
    options = {"response_format": response_format} | _billed(billing)
    output = await charge.paid(call.services, call.principal.key_id, billing,
                               run_sync(call, job_input, options, IMAGES_FIELDS))
    return await _finish(call, output, response_format, size, billing)


async def _finish(
    call: Call, output: Any, response_format: str, size: dict[str, int], billing: dict[str, Any] | None
) -> Response[Any]:
    key_id = call.principal.key_id
    await charge.settle_output(call.services, key_id, call.route, billing, output)
    images = complete.images(await to_openai(call.services, output, response_format), call.route)
    record(call.services, call.principal.key_id, "images", image_counts(output, len(images["data"]), size))
    generations.finished(call.services, generation_id=images["id"], owner=key_id, route=call.route, usage=None,
                         cost=usd(int(billing["price"])) if billing is not None else None)
    return Response(content=msgspec.json.encode(images), media_type="application/json")


@post(
    "/v1/images/edits",
    summary="Edit images",
    description="OpenAI image editing (multipart `image` or `image[]`, `prompt`, `n`, `size`, `response_format`): "
    "the images surface's `img2img` task on a model whose `inference_types` list it. " + docs.ASYNC_NOTE,
    tags=["openai"],
    status_code=200,
    middleware=[rate_headers],
    request_max_body_size=EDIT_BODY_LIMIT,
)
async def edit_images(request: Request[Any, Any, Any]) -> Response[Any]:
    services, principal = await admit(request, "images")
    form = await read_form(request)
    fields: dict[str, Any] = {}
    images: list[bytes] = []
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key in ("image", "image[]"):
                images.append(await value.read())
            elif key == "mask":
                raise InvalidRequest("mask is not supported: describe the edit in the prompt", param="mask")
            await value.close()
        elif key in fields:
            raise InvalidRequest(f"{key} was sent twice", param=key)
        else:
            fields[key] = value
    parsed = validate_form(fields, EditRequest)
    route = services.resolve("images", parsed.model)
    uploads, errors = check_files(IMG2IMG, {"images": images})
    if errors:
        raise InvalidRequest(errors[0][1].replace("images", "image"), param="image")
    if not images:
        raise InvalidRequest("image is required: upload it as multipart field 'image'", param="image")
    size = parse_size(parsed.size)
    params = Img2Img(model=route.public_model, prompt=parsed.prompt, num_images=parsed.n, width=size.get("width"),
                     height=size.get("height"))
    urls = await stage(services.files, {"images": images}, uploads)
    staged = {"image": urls["images"]} if len(images) == 1 else urls
    job_input = task_input(services, IMG2IMG, params, route, staged, {"images": uploads["images"]})
    response_format = parsed.response_format or "url"
    call = Call(services, request, principal, route)
    webhook_url = await checked_webhook_url(services, parsed.webhook_url)
    billing = await hold_images(call, IMG2IMG, params, {"images": uploads["images"]})
    if choose_mode(request, route, stream=False, webhook_url=webhook_url) == "async":
        digest = hashlib.sha256(b"".join(images) + msgspec.json.encode(fields)).hexdigest()
        return await charge.paid_enqueue(services, principal.key_id, billing, enqueue(
            call,
            job_input,
            webhook_url=await job_webhook_url(services, principal, webhook_url),
            digest=digest,
            options={"response_format": response_format, "size": size} | _billed(billing),
        ))
    return await run_images(call, job_input, response_format, size, billing)
