"""img2txt (OCR): a vision model on the chat surface, asked with an image part."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from app.routing.schema import ModelRoute
from app.tasks.common import TaskParams, check_model_limits
from app.tasks.spec import IMAGE_FORMATS, MB, FileRule, TaskSpec, Uploads
from app.tasks.validation import FieldErrors

# Held per image before the text exists (settled on the real count): generous for a dense
# 1024x1024 page, the size the seeds' OCR price refers to.
ESTIMATED_CHARS_PER_MEGAPIXEL = 2000
MAX_OUTPUT_TOKENS = 4096


class Img2Txt(TaskParams, kw_only=True):
    language: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    format: Literal["text", "json"] | None = None
    # The price call's alternative to the file (reference §3.5).
    width: Annotated[int, msgspec.Meta(ge=1, le=16_384)] | None = None
    height: Annotated[int, msgspec.Meta(ge=1, le=16_384)] | None = None


def instruction(params: Img2Txt) -> str:
    ask = "Extract all text from this image, keeping reading order and line breaks."
    if params.format == "json":
        ask = "Extract all text from this image as JSON: {\"blocks\": [{\"text\": ...}]} in reading order."
    if params.language:
        ask += f" The text is in the language {params.language!r}."
    return ask + " Answer with the extracted text only."


def _check(params: Img2Txt, uploads: Uploads, route: ModelRoute) -> FieldErrors:
    dims = next((u.dimensions for u in uploads.get("image", ()) if u.dimensions), None)
    if dims is None:
        return []
    return [("image", message.replace("The ", "The image ", 1))
            for field, message in check_model_limits(params, route, width=dims[0], height=dims[1])
            if field in ("width", "height")]


def _quantities(params: Img2Txt, uploads: Uploads, route: ModelRoute) -> dict[str, float]:
    dims = next((u.dimensions for u in uploads.get("image", ()) if u.dimensions), None)
    if dims is None:
        dims = (params.width or 1024, params.height or 1024)
    megapixels = dims[0] * dims[1] / (1024 * 1024)
    return {"output_chars": float(max(1, round(megapixels * ESTIMATED_CHARS_PER_MEGAPIXEL)))}


# format=json: the worker's constrained decoding holds the reply to this shape (the
# instruction alone only asks for it).
BLOCKS_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "ocr_blocks",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"blocks": {"type": "array", "items": {
                "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
            }}},
            "required": ["blocks"],
        },
    },
}


def _worker_input(params: Img2Txt, upstream_model: str, urls: Mapping[str, list[str]]) -> dict[str, Any]:
    content = [
        {"type": "text", "text": instruction(params)},
        {"type": "image_url", "image_url": {"url": urls["image"][0]}},
    ]
    request: dict[str, Any] = {
        "model": upstream_model,
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        "max_tokens": MAX_OUTPUT_TOKENS,
    }
    if params.format == "json":
        request["response_format"] = BLOCKS_FORMAT
    return {"openai_route": "/v1/chat/completions", "openai_input": request}


IMG2TXT = TaskSpec(
    "img2txt", "chat", "img2txt", Img2Txt,
    files=(FileRule("image", IMAGE_FORMATS, 10 * MB, required=True),),
    check=_check, quantities=_quantities, worker_input=_worker_input,
)
