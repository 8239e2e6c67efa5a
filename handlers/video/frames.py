"""The first and last frame images of img2video: fetched by URL (handlers.common.media, with
its SSRF and size rules), decoded in memory with Pillow, errors naming the field."""

from __future__ import annotations

import io
from typing import Any

from handlers.common.errors import InvalidInput
from handlers.common.media import fetch_media

MAX_PIXELS = 64 * 1024 * 1024  # a small file can declare a huge canvas (decompression bomb)


def fit(image: Any, width: int, height: int) -> Any:
    """Centre-crop to the video's aspect ratio, then resize: the pipeline would stretch it."""
    from PIL import Image, ImageOps

    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)


def load_image(url: str, param: str) -> Any:
    """The image at ``url`` as RGB; a file Pillow cannot read is an ``InvalidInput`` for ``param``."""
    from PIL import Image

    media = fetch_media(url, "image", param)
    try:
        with Image.open(io.BytesIO(media.data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise InvalidInput(param, f"The {param} is larger than {MAX_PIXELS} pixels.")
            return image.convert("RGB")  # convert() decodes the whole file: truncation fails here
    except InvalidInput:
        raise
    except Exception:  # Pillow raises many types for a broken file; the client's file is the cause
        raise InvalidInput(param, f"The {param} could not be decoded as an image.", code="invalid_image") from None
