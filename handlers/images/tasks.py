"""The four image tasks, each from a validated job input to the worker's output dict.

``task`` picks one (``txt2img`` when absent, so worker-sdxl clients keep working). Every
task answers ``images`` (data URIs or bucket URLs), ``image_url``, the size of the result
and ``task``; inputs are checked before any model is loaded or any picture fetched where
the check allows it. Input pictures are fetched and decoded by ``inputs.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from handlers.common.cancel import CancelToken
from handlers.common.errors import InvalidInput
from handlers.common.media import fetch_media
from handlers.common.progress import report_progress
from handlers.common.validation import parse_input
from handlers.images import edit, engine, inputs, output, rmbg, upscale
from handlers.images.schema import (
    EditInput,
    ImagesInput,
    Limits,
    RemoveBackgroundInput,
    UpscaleInput,
    alpha_format,
    check_limits,
    output_format,
)

TASKS = ("txt2img", "img2img", "img-rmbg", "img-upscale")


def task_of(raw: Any) -> str:
    """The job's task; ``InvalidInput`` naming ``task`` (or ``input``) when it is not one of ours."""
    if not isinstance(raw, dict):
        raise InvalidInput("input", "input must be a JSON object")
    task = raw.get("task")
    if task is None:
        return "txt2img"
    if task not in TASKS:
        raise InvalidInput("task", f"task must be one of {', '.join(TASKS)}")
    return str(task)


def _deliver(job: dict[str, Any], images: list[Any], fmt: str, limits: Limits) -> list[str]:
    blobs = [output.encode(image, fmt) for image in images]
    return output.deliver(str(job.get("id") or "local"), blobs, fmt, limits.max_inline_bytes)


def _result(task: str, urls: list[str], image: Any, fmt: str, model: str, started: float) -> dict[str, Any]:
    return {
        "task": task,
        "images": urls,
        "image_url": urls[0],  # worker-sdxl's field, for clients written against it
        "width": image.width,
        "height": image.height,
        "output_format": fmt,
        "model": model,
        "generation_time_s": round(time.perf_counter() - started, 3),
    }


def _generation_fields(plan: engine.Plan) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "seed": plan.seed,
        "seeds": [plan.seed + i for i in range(plan.num_images)],
        "num_inference_steps": plan.steps,
    }
    if plan.ignored:
        fields["ignored"] = plan.ignored  # inputs this model's pipeline cannot use
    return fields


def _progress(job: dict[str, Any]) -> Callable[[float], None]:
    return lambda pct: report_progress(job, pct)


def txt2img(job: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
    params = parse_input(job.get("input"), ImagesInput)
    limits = Limits.from_env()
    check_limits(params, limits)  # before the model loads: bad input fails fast
    fmt = output_format(params.output_format)
    worker = engine.get_engine()
    plan = worker.plan(params, limits)
    started = time.perf_counter()
    images = worker.generate(plan, _progress(job), cancel)
    urls = _deliver(job, images, fmt, limits)
    result = _result("txt2img", urls, images[0], fmt, params.model or worker.name, started)
    result |= {"width": plan.width, "height": plan.height} | _generation_fields(plan)
    return result


def img2img(job: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
    params = parse_input(job.get("input"), EditInput)
    limits = Limits.from_env()
    check_limits(params, limits)
    fmt = output_format(params.output_format)
    if params.image is not None and params.images is not None:
        raise InvalidInput("image", "Send either image or images, not both")
    if (params.width is None) != (params.height is None):
        raise InvalidInput("height" if params.height is None else "width", "Send width and height together")
    if params.image is not None:
        pictures = [inputs.fetch_image(params.image, "image")]
    elif params.images is not None:
        pictures = [inputs.fetch_image(url, f"images.{i}") for i, url in enumerate(params.images)]
    else:
        raise InvalidInput("image", "image (or images) is required")
    worker = edit.get_edit_engine()
    plan = worker.plan_edit(params, pictures, limits)
    started = time.perf_counter()
    images = worker.generate(plan, _progress(job), cancel)
    urls = _deliver(job, images, fmt, limits)
    result = _result("img2img", urls, images[0], fmt, params.model or worker.name, started)
    return result | _generation_fields(plan)


def img_rmbg(job: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
    params = parse_input(job.get("input"), RemoveBackgroundInput)
    limits = Limits.from_env()
    fmt = alpha_format(params.output_format)
    picture = inputs.fetch_image(params.image, "image")
    remover = rmbg.get_remover()
    cancel.check()
    started = time.perf_counter()
    report_progress(job, 5)
    cutout = remover.remove(picture)
    report_progress(job, 95)
    urls = _deliver(job, [cutout], fmt, limits)
    return _result("img-rmbg", urls, cutout, fmt, params.model or remover.name, started)


def img_upscale(job: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
    params = parse_input(job.get("input"), UpscaleInput)
    limits = Limits.from_env()
    fmt = output_format(params.output_format)
    media = fetch_media(params.image, "image", "image")
    header = inputs.open_image(media.data, "image")
    upscaler = upscale.get_upscaler()
    upscaler.output_size(header.width, header.height, params.scale)  # the size limit, before decoding
    picture = inputs.decode_image(header, "image")  # (EXIF rotation swaps sides, not the area)
    started = time.perf_counter()
    result_image = upscaler.upscale(picture, params.scale, _progress(job), cancel)
    urls = _deliver(job, [result_image], fmt, limits)
    result = _result("img-upscale", urls, result_image, fmt, params.model or upscaler.name, started)
    result["scale"] = params.scale or upscaler.scale
    return result


RUNNERS: dict[str, Callable[[dict[str, Any], CancelToken], dict[str, Any]]] = {
    "txt2img": txt2img,
    "img2img": img2img,
    "img-rmbg": img_rmbg,
    "img-upscale": img_upscale,
}
