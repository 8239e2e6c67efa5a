"""Handing the MP4 back in the media dialect: inline base64, or a bucket URL.

RunPod drops a result over its payload limit and reports the job COMPLETED without output,
so inline files are capped (``VIDEO_MAX_INLINE_BYTES``); above the cap a bucket is needed
and the error says so. Everything stays in memory.
"""

from __future__ import annotations

import base64
from typing import Any

from handlers.common import bucket
from handlers.common.errors import HandlerError

CONTENT_TYPE = "video/mp4"



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


def deliver(job_id: str, blob: bytes, max_inline_bytes: int) -> dict[str, Any]:
    """A URL when a bucket is configured, otherwise capped inline base64."""
    if bucket.configured():
        (url,) = bucket.upload(job_id, [(blob, "mp4", CONTENT_TYPE)], "the video")
        return {"content_type": CONTENT_TYPE, "url": url}
    return inline(blob, max_inline_bytes)
