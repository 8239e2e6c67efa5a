"""``Idempotency-Key`` on enqueue: the same key within 24 h returns the first job's body.

The first request claims the key in Redis (SET NX) before starting a GPU job; a concurrent
duplicate waits briefly for the stored body instead of starting a second job.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import msgspec
from litestar import Request

from app.auth import Principal
from app.errors import GatewayError, InvalidRequest
from app.store import Keys

TTL_S = 24 * 3600
_PENDING_TTL_S = 120
_WAIT_S = 10.0


class _Entry(msgspec.Struct):
    fingerprint: str
    body: bytes | None = None


class IdempotencyConflict(GatewayError):
    status_code = 409
    error_type = "invalid_request_error"
    default_code = "idempotency_in_progress"
    retryable = True


class Idempotency:
    def __init__(self, redis: Any, keys: Keys, key_id: str, header: str, fingerprint: str) -> None:
        self._redis = redis
        self._key = keys.idempotency(key_id, hashlib.sha256(header.encode()).hexdigest())
        self._fingerprint = fingerprint

    @classmethod
    def from_request(
        cls, services: Any, request: Request[Any, Any, Any], principal: Principal, digest: str
    ) -> Idempotency | None:
        """``digest`` identifies the request's content, so a reused key with other content is refused."""
        header = request.headers.get("idempotency-key")
        if not header:
            return None
        if len(header) > 255:
            raise InvalidRequest("Idempotency-Key must be at most 255 characters", param="Idempotency-Key")
        fingerprint = hashlib.sha256(f"{request.url.path}\0{digest}".encode()).hexdigest()
        return cls(services.redis, services.keys, principal.key_id, header, fingerprint)

    async def claim(self) -> bytes | None:
        """None when this request owns the key; otherwise the first request's body."""
        pending = msgspec.json.encode(_Entry(self._fingerprint))
        if await self._redis.set(self._key, pending, nx=True, ex=_PENDING_TTL_S):
            return None
        deadline = asyncio.get_running_loop().time() + _WAIT_S
        while True:
            raw = await self._redis.get(self._key)
            if raw is None:
                if await self._redis.set(self._key, pending, nx=True, ex=_PENDING_TTL_S):
                    return None
                continue
            entry = msgspec.json.decode(raw, type=_Entry)
            if entry.fingerprint != self._fingerprint:
                raise InvalidRequest(
                    "This Idempotency-Key was already used with a different request",
                    param="Idempotency-Key",
                    code="idempotency_key_reused",
                )
            if entry.body is not None:
                return entry.body
            if asyncio.get_running_loop().time() > deadline:
                raise IdempotencyConflict("A request with this Idempotency-Key is still being processed")
            await asyncio.sleep(0.05)

    async def store(self, body: bytes) -> None:
        await self._redis.set(self._key, msgspec.json.encode(_Entry(self._fingerprint, body)), ex=TTL_S)

    async def release(self) -> None:
        await self._redis.delete(self._key)
