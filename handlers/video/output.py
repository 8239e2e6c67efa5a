"""Handing the MP4 back in the media dialect: inline base64, or a bucket URL.

RunPod drops a result over its payload limit and reports the job COMPLETED without output,
so inline files are capped (``VIDEO_MAX_INLINE_BYTES``); above the cap a bucket is needed
and the error says so. Everything stays in memory.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from typing import Any

from handlers.common.errors import HandlerError

CONTENT_TYPE = "video/mp4"
URL_TTL_S = 7 * 24 * 3600  # the same 7 days runpod's upload helper grants


def bucket_configured() -> bool:
    return bool(os.environ.get("BUCKET_ENDPOINT_URL", "").strip())


def inline(blob: bytes, max_bytes: int) -> dict[str, Any]:
    data = base64.b64encode(blob).decode("ascii")
    if len(data) > max_bytes:
        raise HandlerError(
            f"The video is {len(data)} bytes as base64, over the inline limit of {max_bytes} bytes "
            "(VIDEO_MAX_INLINE_BYTES); RunPod drops results that large. Configure a bucket "
            "(BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID, BUCKET_SECRET_ACCESS_KEY) to return a URL, "
            "or ask for fewer frames or a smaller size.",
            code="result_too_large",
        )
    return {"content_type": CONTENT_TYPE, "data": data}


def upload(job_id: str, blob: bytes) -> dict[str, Any]:
    """Upload to the S3-compatible bucket from memory and return a presigned GET URL."""
    from runpod.serverless.utils import rp_upload  # lazy: boto3 is only needed with a bucket

    client, _ = rp_upload.get_boto_client()
    if client is None:
        raise HandlerError(
            "BUCKET_ENDPOINT_URL is set but BUCKET_ACCESS_KEY_ID / BUCKET_SECRET_ACCESS_KEY are missing "
            "(or boto3 is not installed)",
            code="bucket_misconfigured",
        )
    bucket = os.environ.get("BUCKET_NAME", "").strip() or time.strftime("%m-%y")
    ttl = int(os.environ.get("BUCKET_URL_TTL_S", "").strip() or URL_TTL_S)
    key = f"{job_id}/{uuid.uuid4().hex}.mp4"
    try:
        client.put_object(Bucket=bucket, Key=key, Body=blob, ContentType=CONTENT_TYPE)
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=ttl)
    except Exception as exc:
        failure = type(exc).__name__
        raise HandlerError(f"Uploading the video to the bucket failed ({failure})", code="upload_failed") from exc
    return {"content_type": CONTENT_TYPE, "url": url}


def deliver(job_id: str, blob: bytes, max_inline_bytes: int) -> dict[str, Any]:
    """A URL when a bucket is configured, otherwise capped inline base64."""
    if bucket_configured():
        return upload(job_id, blob)
    return inline(blob, max_inline_bytes)
