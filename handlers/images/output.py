"""Encoding generated images and handing them back: inline data URIs or bucket URLs.

Everything stays in memory. RunPod silently drops a result over its payload limit (the job
reads COMPLETED with no output), so inline results are capped and the cap's error tells the
operator to configure a bucket instead.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from handlers.common import bucket
from handlers.common.errors import HandlerError
from handlers.images.schema import FORMATS

_QUALITY = 90  # jpeg/webp: visually lossless for generated images at a fraction of png's size


def encode(image: Any, fmt: str) -> bytes:
    """PIL image -> file bytes in ``fmt`` (png, jpeg or webp)."""
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, format="PNG")
    elif fmt == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=_QUALITY)
    else:
        image.save(buffer, format="WEBP", quality=_QUALITY)
    return buffer.getvalue()


def data_uri(blob: bytes, fmt: str) -> str:
    return f"data:{FORMATS[fmt]};base64,{base64.b64encode(blob).decode('ascii')}"



def inline(blobs: list[bytes], fmt: str, max_bytes: int) -> list[str]:
    """Data URIs, or a server_error naming the bucket setting when they would be too big."""
    uris = [data_uri(blob, fmt) for blob in blobs]
    total = sum(len(uri) for uri in uris)
    if total > max_bytes:
        raise HandlerError(
            f"The generated images are {total} bytes as data URIs, over the inline limit of "
            f"{max_bytes} bytes (IMAGES_MAX_INLINE_BYTES); RunPod drops results that large. "
            "Configure a bucket (BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID, BUCKET_SECRET_ACCESS_KEY) "
            "to return URLs, or ask for fewer or smaller images, or output_format jpeg/webp.",
            code="result_too_large",
        )
    return uris


def deliver(job_id: str, blobs: list[bytes], fmt: str, max_inline_bytes: int) -> list[str]:
    """URLs when a bucket is configured, otherwise capped inline data URIs."""
    if bucket.configured():
        return bucket.upload(job_id, [(blob, fmt, FORMATS[fmt]) for blob in blobs], "the images")
    return inline(blobs, fmt, max_inline_bytes)
