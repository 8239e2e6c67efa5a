"""Signed, expiring media URLs: ``GET /v1/files/{file_id}?exp=&sig=`` serves bytes without a key.

Images a handler returned as data URIs and audio uploads too big to send inline are kept
in Redis for ``DRYAPI_FILE_TTL_S`` and handed out as signed gateway URLs.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import Any

import redis.asyncio as aioredis
from litestar import Response, get
from litestar.datastructures import State

from app import docs
from app.errors import InvalidRequest, NotFound
from app.signing import Signer
from app.store import Keys

_DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[\w=.+-]+)*;base64,", re.ASCII)
_TYPE_FIELD = b"t"
_BODY_FIELD = b"b"


def decode_data_uri(value: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of a base64 data URI, or None when ``value`` is not one."""
    match = _DATA_URI.match(value)
    if not match:
        return None
    try:
        return match.group("type") or "application/octet-stream", base64.b64decode(value[match.end() :])
    except (binascii.Error, ValueError):
        return None


class FileStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, signer: Signer, *, public_url: str, ttl_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._signer = signer
        self._public_url = public_url.rstrip("/")
        self.ttl_s = ttl_s

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    async def put(self, data: bytes, content_type: str) -> str:
        """Store ``data`` and return its signed URL."""
        file_id = "file_" + secrets.token_urlsafe(18)
        key = self._keys.file(file_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={_TYPE_FIELD: content_type.encode(), _BODY_FIELD: data})
            pipe.expire(key, self.ttl_s)
            await pipe.execute()
        return self.url(file_id)

    def url(self, file_id: str) -> str:
        expires, signature = self._signer.sign_expiring("file", file_id, self.ttl_s)
        return f"{self._public_url}/v1/files/{file_id}?exp={expires}&sig={signature}"

    async def get(self, file_id: str) -> tuple[str, bytes] | None:
        values = await self._redis.hmget(self._keys.file(file_id), [_TYPE_FIELD, _BODY_FIELD])
        content_type, data = values
        if not isinstance(content_type, bytes) or not isinstance(data, bytes):
            return None
        return content_type.decode(), data


@get(
    "/v1/files/{file_id:str}",
    exclude_from_auth=True,
    summary="Download signed media",
    description="Generated images and staged uploads, through signed links (`exp`, `sig`) valid for "
    "DRYAPI_FILE_TTL_S; no API key.",
    tags=["files"],
    responses=docs.FILE_RESPONSES,
)
async def download_file(file_id: str, state: State, exp: int | None = None, sig: str | None = None) -> Response[Any]:
    signer: Signer = state.signer
    if exp is None or not sig:
        raise InvalidRequest("This URL must carry exp and sig query parameters", param="sig")
    if not signer.verify_expiring("file", file_id, exp, sig):
        raise NotFound("This file link is invalid or has expired", code="file_not_found")
    files: FileStore = state.files
    found = await files.get(file_id)
    if found is None:
        raise NotFound("This file has expired", code="file_expired")
    content_type, data = found
    return Response(
        content=data,
        media_type=content_type,
        headers={"cache-control": "private, max-age=300", "x-content-type-options": "nosniff"},
    )
