"""Images for vision chat: fetched or decoded through the media helper, then laid out for the model.

``load_images`` turns the job's image parts into RGB Pillow images (data URIs decoded, http(s)
URLs fetched with the media helper's size limit, SSRF rules and timeouts; pixel count capped
before decoding). ``expand_image_tokens`` gives each image placeholder in the prompt the run
of image tokens the model reads for it: Qwen2-VL-class models (Qwen2-VL, Qwen2.5-VL,
Nanonets-OCR-s) use one token per ``merge_size``² patches of 14 px, as the image processor's
``image_grid_thw`` says.
"""

from __future__ import annotations

from typing import Any

from handlers.chat.engine import ChatSettings
from handlers.chat.messages import ImageRef
from handlers.common.errors import HandlerError, InvalidInput
from handlers.common.images import decode_image, open_image
from handlers.common.media import decode_base64_media, fetch_media


def load_images(refs: tuple[ImageRef, ...], settings: ChatSettings) -> list[Any]:
    """Decoded RGB images, in prompt order (blocking: run it in a thread)."""
    if len(refs) > settings.max_images:
        raise InvalidInput(
            refs[settings.max_images].param,
            f"at most {settings.max_images} images are accepted per request",
            code="too_many_images",
        )
    images: list[Any] = []
    for ref in refs:
        if ref.url[:5].lower() == "data:":
            media = decode_base64_media(ref.url, "image", ref.param)
        else:
            media = fetch_media(ref.url, "image", ref.param)
        picture = open_image(media.data, ref.param, settings.max_image_pixels)
        images.append(decode_image(picture, ref.param, keep_alpha=False))
    return images


def image_token_id(tokenizer: Any, config: Any) -> int:
    token = getattr(config, "image_token_id", None)
    if token is None:
        token = getattr(config, "image_token_index", None)
    if token is None:
        token = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    if not isinstance(token, int) or token < 0:
        raise HandlerError("this vision model names no image token", code="model_load_failed")
    return token


def image_inputs(image_processor: Any, images: list[Any]) -> tuple[dict[str, Any], list[int]]:
    """The processor's tensors for ``images`` and how many image tokens each one takes."""
    inputs = dict(image_processor(images=images, return_tensors="pt"))
    grid = inputs.get("image_grid_thw")
    merge = int(getattr(image_processor, "merge_size", 1) or 1)
    if grid is None:
        raise HandlerError("this vision model's image processor is not Qwen2-VL-like", code="unsupported_model")
    counts = [int(row.prod()) // (merge * merge) for row in grid]
    return inputs, counts


def expand_image_tokens(ids: list[int], image_token: int, counts: list[int], param: str) -> list[int]:
    """``ids`` with the k-th image placeholder repeated ``counts[k]`` times."""
    if ids.count(image_token) != len(counts):
        raise InvalidInput(
            param,
            f"the chat template placed {ids.count(image_token)} image placeholders for {len(counts)} images",
            code="unsupported_content",
        )
    out: list[int] = []
    k = 0
    for token in ids:
        if token == image_token:
            out += [token] * counts[k]
            k += 1
        else:
            out.append(token)
    return out


def is_vision_config(config: Any) -> bool:
    """Whether ``config`` is an image-text-to-text model (Qwen2-VL class and the like)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    return getattr(config, "model_type", None) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES


def load_chat_template(tokenizer: Any, path: str) -> None:
    """Give ``tokenizer`` the processor's chat template when it has none of its own: vision
    repositories (Qwen2-VL) often ship it only as the processor's ``chat_template.json``."""
    if getattr(tokenizer, "chat_template", None):
        return
    import json

    from transformers.utils.hub import cached_file

    for name in ("chat_template.jinja", "chat_template.json"):
        found = cached_file(path, name, _raise_exceptions_for_missing_entries=False)
        if found:
            with open(found, encoding="utf-8") as handle:
                text = handle.read()
            tokenizer.chat_template = text if name.endswith(".jinja") else json.loads(text)["chat_template"]
            return
