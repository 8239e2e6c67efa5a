"""Client pictures decoded in memory: header first (pixel limit), then pixels, EXIF applied.

Shared by the images worker (its task inputs) and the chat worker (``image_url`` parts).
Pillow reads only the header first, so an image whose pixel count is over the caller's limit
(a decompression bomb among them) is refused before its pixels are decoded. EXIF orientation
is applied, so a phone photo is seen the way it is shown. Errors name the field and never
quote the data or its URL.
"""

from __future__ import annotations

import io
from typing import Any

from handlers.common.errors import InvalidInput

# Modes kept as they are: colour with or without alpha. Everything else (palette, CMYK,
# 16-bit, greyscale) is converted on the way in.
_WITH_ALPHA = ("RGBA", "LA", "PA")


def open_image(data: bytes, param: str, max_pixels: int) -> Any:
    """Pillow image from ``data``, header read only; raises ``InvalidInput`` naming ``param``."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise InvalidInput(param, f"{param} is not a readable image", code="invalid_image") from None
    width, height = image.size
    if width < 1 or height < 1 or width * height > max_pixels:
        raise InvalidInput(
            param,
            f"{param} is {width}x{height} pixels; at most {max_pixels} pixels are accepted",
            code="image_too_large",
        )
    return image


def decode_image(image: Any, param: str, *, keep_alpha: bool = True) -> Any:
    """Decode the pixels, apply EXIF orientation; RGB, or RGBA when the image has alpha and
    ``keep_alpha`` (vision models read RGB: alpha is dropped for them)."""
    from PIL import Image, ImageOps

    try:
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise InvalidInput(param, f"{param} is a damaged or truncated image", code="invalid_image") from None
    has_alpha = image.mode in _WITH_ALPHA or (image.mode == "P" and "transparency" in image.info)
    if has_alpha and not keep_alpha:
        # Composite on white: transparent areas of a scanned page or logo read as paper.
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGBA" if has_alpha else "RGB")
