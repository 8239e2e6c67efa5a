"""Input pictures for the image tasks: fetched by URL, checked, decoded in memory.

Bytes come through ``handlers.common.media`` (http(s) only, the SSRF rule, the 10 MB image
limit, format sniffing). Pillow then reads only the header first, so an image whose pixel
count is over ``IMAGES_MAX_INPUT_PIXELS`` (a decompression bomb among them) is refused before
its pixels are decoded. EXIF orientation is applied, so a phone photo is processed the way
it is shown. Nothing touches the disk; errors name the field and never quote the URL.
"""

from __future__ import annotations

import io
import os
from typing import Any

from handlers.common.errors import InvalidInput
from handlers.common.media import fetch_media

MAX_INPUT_PIXELS = 64 * 1024 * 1024  # 8192 x 8192: far above what 10 MB of PNG/JPEG usually holds
# Modes the tasks work in: colour with or without alpha. Everything else (palette, CMYK,
# 16-bit, greyscale) is converted on the way in.
_WITH_ALPHA = ("RGBA", "LA", "PA")


def max_input_pixels() -> int:
    raw = os.environ.get("IMAGES_MAX_INPUT_PIXELS", "").strip()
    return int(raw) if raw else MAX_INPUT_PIXELS


def open_image(data: bytes, param: str) -> Any:
    """Pillow image from ``data``, header read only; raises ``InvalidInput`` naming ``param``."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise InvalidInput(param, f"{param} is not a readable image", code="invalid_image") from None
    limit = max_input_pixels()
    width, height = image.size
    if width < 1 or height < 1 or width * height > limit:
        raise InvalidInput(
            param,
            f"{param} is {width}x{height} pixels; at most {limit} pixels are accepted",
            code="image_too_large",
        )
    return image


def decode_image(image: Any, param: str) -> Any:
    """Decode the pixels, apply EXIF orientation, and return RGB or RGBA (alpha kept)."""
    from PIL import Image, ImageOps

    try:
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise InvalidInput(param, f"{param} is a damaged or truncated image", code="invalid_image") from None
    has_alpha = image.mode in _WITH_ALPHA or (image.mode == "P" and "transparency" in image.info)
    return image.convert("RGBA" if has_alpha else "RGB")


def fetch_image(url: Any, param: str) -> Any:
    """GET ``url`` into memory and decode it (see the module docstring)."""
    media = fetch_media(url, "image", param)
    return decode_image(open_image(media.data, param), param)


def has_alpha(image: Any) -> bool:
    return bool(image.mode == "RGBA")
