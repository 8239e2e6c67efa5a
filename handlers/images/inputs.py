"""Input pictures for the image tasks: fetched by URL, checked, decoded in memory.

Bytes come through ``handlers.common.media`` (http(s) only, the SSRF rule, the 10 MB image
limit, format sniffing). Pillow then reads only the header first, so an image whose pixel
count is over ``IMAGES_MAX_INPUT_PIXELS`` (a decompression bomb among them) is refused before
its pixels are decoded. EXIF orientation is applied, so a phone photo is processed the way
it is shown. Nothing touches the disk; errors name the field and never quote the URL.
"""

from __future__ import annotations

import os
from typing import Any

from handlers.common import images as common_images
from handlers.common.media import fetch_media

MAX_INPUT_PIXELS = 64 * 1024 * 1024  # 8192 x 8192: far above what 10 MB of PNG/JPEG usually holds


def max_input_pixels() -> int:
    raw = os.environ.get("IMAGES_MAX_INPUT_PIXELS", "").strip()
    return int(raw) if raw else MAX_INPUT_PIXELS


def open_image(data: bytes, param: str) -> Any:
    """Pillow image from ``data``, header read only, within ``IMAGES_MAX_INPUT_PIXELS``."""
    return common_images.open_image(data, param, max_input_pixels())


def decode_image(image: Any, param: str) -> Any:
    """Decode the pixels, apply EXIF orientation, and return RGB or RGBA (alpha kept)."""
    return common_images.decode_image(image, param)


def fetch_image(url: Any, param: str) -> Any:
    """GET ``url`` into memory and decode it (see the module docstring)."""
    media = fetch_media(url, "image", param)
    return decode_image(open_image(media.data, param), param)


def has_alpha(image: Any) -> bool:
    return bool(image.mode == "RGBA")
