"""Encoding generated images and handing them back: inline data URIs or bucket URLs.

Everything stays in memory. RunPod silently drops a result over its payload limit (the job
reads COMPLETED with no output), so inline results are capped and the cap's error tells the
operator to configure a bucket instead.
"""

from __future__ import annotations

import base64
import io
import os
import time
import uuid
from typing import Any

from handlers.common.errors import HandlerError
from handlers.images.schema import FORMATS

_QUALITY = 90  # jpeg/webp: visually lossless for generated images at a fraction of png's size
URL_TTL_S = 7 * 24 * 3600  # the same 7 days runpod's upload helper grants


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


def bucket_configured() -> bool:
    return bool(os.environ.get("BUCKET_ENDPOINT_URL", "").strip())


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


def upload(job_id: str, blobs: list[bytes], fmt: str) -> list[str]:
    """Upload each image to the S3-compatible bucket and return presigned GET URLs."""
    from runpod.serverless.utils import rp_upload  # lazy: boto3 is only needed with a bucket

    # runpod's helper builds the client from the BUCKET_* env vars; we upload from memory
    # (its file-based helpers would need a temp file, and without credentials it silently
    # writes to a local folder instead, which must not happen here).
    client, _ = rp_upload.get_boto_client()
    if client is None:
        raise HandlerError(
            "BUCKET_ENDPOINT_URL is set but BUCKET_ACCESS_KEY_ID / BUCKET_SECRET_ACCESS_KEY are missing "
            "(or boto3 is not installed)",
            code="bucket_misconfigured",
        )
    bucket = os.environ.get("BUCKET_NAME", "").strip() or time.strftime("%m-%y")
    ttl = int(os.environ.get("BUCKET_URL_TTL_S", "").strip() or URL_TTL_S)
    urls: list[str] = []
    try:
        for blob in blobs:
            key = f"{job_id}/{uuid.uuid4().hex}.{fmt}"
            client.put_object(Bucket=bucket, Key=key, Body=blob, ContentType=FORMATS[fmt])
            urls.append(
                client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=ttl)
            )
    except Exception as exc:
        raise HandlerError(
            f"Uploading images to the bucket failed ({type(exc).__name__})", code="upload_failed"
        ) from exc
    return urls


def deliver(job_id: str, blobs: list[bytes], fmt: str, max_inline_bytes: int) -> list[str]:
    """URLs when a bucket is configured, otherwise capped inline data URIs."""
    if bucket_configured():
        return upload(job_id, blobs, fmt)
    return inline(blobs, fmt, max_inline_bytes)
