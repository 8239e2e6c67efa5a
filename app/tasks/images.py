"""The images surface's tasks: txt2img, img2img, img-rmbg, img-upscale.

Worker dialect (handlers/README.md): worker-sdxl's fields plus ``task`` and, for the tasks that
take pictures, ``image`` or ``images`` as URLs the worker fetches; output ``images[]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from app.routing.schema import ModelRoute
from app.tasks.common import (
    Guidance,
    Loras,
    Prompt,
    Seed,
    Side,
    Steps,
    TaskParams,
    check_loras,
    check_model_limits,
    resolved_seed,
)
from app.tasks.spec import IMAGE_FORMATS, MB, FileRule, TaskSpec, Uploads
from app.tasks.validation import FieldErrors

_IMAGE = FileRule("image", IMAGE_FORMATS, 10 * MB)
_REFERENCE_PIXELS = 1024 * 1024  # priced size when neither the request nor the model says


class Txt2Img(TaskParams, kw_only=True):
    prompt: Prompt
    width: Side | None = None
    height: Side | None = None
    seed: Seed | None = None
    steps: Steps | None = None
    guidance: Guidance | None = None
    negative_prompt: Prompt | None = None
    loras: Loras | None = None
    num_images: Annotated[int, msgspec.Meta(ge=1, le=8)] | None = None  # OpenAI's ``n``


class Img2Img(Txt2Img, kw_only=True):
    strength: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None  # sent by the MCP server


class ImageOnly(TaskParams, kw_only=True):
    pass


def _default(route: ModelRoute, name: str) -> float | None:
    value = route.info.defaults.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _pixels(params: Txt2Img, uploads: Uploads, route: ModelRoute) -> float:
    if params.width and params.height:
        return float(params.width * params.height)
    for field in ("image", "images"):
        for upload in uploads.get(field, ()):
            if upload.dimensions:
                return float(upload.dimensions[0] * upload.dimensions[1])
    width, height = _default(route, "width"), _default(route, "height")
    return width * height if width and height else float(_REFERENCE_PIXELS)


def _generation_quantities(params: Txt2Img, uploads: Uploads, route: ModelRoute) -> dict[str, float]:
    steps = params.steps or _default(route, "steps") or 1
    return {"pixels": _pixels(params, uploads, route), "steps": float(steps), "images": float(params.num_images or 1)}


def _check_generation(params: Txt2Img, uploads: Uploads, route: ModelRoute) -> FieldErrors:
    errors = check_model_limits(params, route)
    if (params.width is None) != (params.height is None):
        errors.append(("height" if params.height is None else "width", "Send width and height together."))
    return errors + check_loras(params.loras, route)


def _check_edit(params: Img2Img, uploads: Uploads, route: ModelRoute) -> FieldErrors:
    errors = _check_generation(params, uploads, route)
    single, many = uploads.get("image", []), uploads.get("images", [])
    if single and many:
        errors.append(("image", "Send either image or images[], not both."))
    elif not single and not many:
        errors.append(("image", "The image field is required (or images[])."))
    count = len(many) or len(single)
    errors += [e for e in check_model_limits(params, route, images=[None] * count) if e[0] == "images"]
    return errors


def _input_image_pixels(params: ImageOnly, uploads: Uploads, route: ModelRoute) -> dict[str, float]:
    dims = next((u.dimensions for u in uploads.get("image", ()) if u.dimensions), None)
    width = getattr(params, "width", None)
    height = getattr(params, "height", None)
    pixels = float(dims[0] * dims[1]) if dims else float(width * height) if width and height else _REFERENCE_PIXELS
    return {"pixels": pixels, "images": 1.0}


def _check_input_size(params: ImageOnly, uploads: Uploads, route: ModelRoute) -> FieldErrors:
    dims = next((u.dimensions for u in uploads.get("image", ()) if u.dimensions), None)
    if dims is None:
        return []
    errors = check_model_limits(params, route, width=dims[0], height=dims[1])
    return [("image", message.replace("The width", "The image width").replace("The height", "The image height"))
            for field, message in errors if field in ("width", "height")]


def _generation_input(task: str) -> Any:
    def build(params: Txt2Img, upstream_model: str, urls: Mapping[str, list[str]]) -> dict[str, Any]:
        job: dict[str, Any] = {"model": upstream_model, "prompt": params.prompt, "seed": resolved_seed(params.seed)}
        if task != "txt2img":  # absent means txt2img: stock sdxl-style workers reject unknown keys
            job["task"] = task
        optional = {"width": params.width, "height": params.height, "num_inference_steps": params.steps,
                    "guidance_scale": params.guidance, "negative_prompt": params.negative_prompt,
                    "num_images": params.num_images}
        job |= {k: v for k, v in optional.items() if v is not None}
        if params.loras:
            job["loras"] = [{"name": lora.name, "weight": lora.weight} for lora in params.loras]
        if isinstance(params, Img2Img) and params.strength is not None:
            job["strength"] = params.strength
        if urls.get("images"):
            job["images"] = list(urls["images"])
        elif urls.get("image"):
            job["image"] = urls["image"][0]
        return job

    return build


def _image_only_input(task: str) -> Any:
    def build(params: ImageOnly, upstream_model: str, urls: Mapping[str, list[str]]) -> dict[str, Any]:
        return {"task": task, "model": upstream_model, "image": urls["image"][0]}

    return build


TXT2IMG = TaskSpec(
    "txt2img", "images", "txt2img", Txt2Img,
    check=_check_generation, quantities=_generation_quantities, worker_input=_generation_input("txt2img"),
)
IMG2IMG = TaskSpec(
    "img2img", "images", "img2img", Img2Img,
    files=(_IMAGE, FileRule("images", IMAGE_FORMATS, 10 * MB, many=16)),
    check=_check_edit, quantities=_generation_quantities, worker_input=_generation_input("img2img"),
)
IMG_RMBG = TaskSpec(
    "img-rmbg", "images", "img-rmbg", ImageOnly,
    files=(FileRule("image", IMAGE_FORMATS, 10 * MB, required=True),),
    check=_check_input_size, quantities=_input_image_pixels, worker_input=_image_only_input("img-rmbg"),
)
IMG_UPSCALE = TaskSpec(
    "img-upscale", "images", "img-upscale", ImageOnly,
    files=(FileRule("image", IMAGE_FORMATS, 10 * MB, required=True),),
    check=_check_input_size, quantities=_input_image_pixels, worker_input=_image_only_input("img-upscale"),
)
