"""Results too large to return inline go to the S3-compatible bucket RunPod's workers use
(``BUCKET_*`` env, runpod's ``rp_upload`` conventions), uploaded from memory.

runpod's own file-based helpers would need a temp file, and without credentials they silently
write to a local folder instead, which must not happen here.
"""

from __future__ import annotations

import os
import time
import uuid

from handlers.common.errors import HandlerError

URL_TTL_S = 7 * 24 * 3600  # the same 7 days runpod's upload helper grants


def configured() -> bool:
    return bool(os.environ.get("BUCKET_ENDPOINT_URL", "").strip())


def upload(job_id: str, files: list[tuple[bytes, str, str]], what: str) -> list[str]:
    """Upload each ``(blob, extension, content_type)`` and return presigned GET URLs;
    ``what`` names the result in an error ("the images")."""
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
    urls: list[str] = []
    try:
        for blob, extension, content_type in files:
            key = f"{job_id}/{uuid.uuid4().hex}.{extension}"
            client.put_object(Bucket=bucket, Key=key, Body=blob, ContentType=content_type)
            urls.append(
                client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=ttl)
            )
    except Exception as exc:
        failure = type(exc).__name__
        raise HandlerError(f"Uploading {what} to the bucket failed ({failure})", code="upload_failed") from exc
    return urls
