"""API keys: issued once, stored only as a SHA-256 digest in Redis."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import AsyncIterator

import msgspec
import redis.asyncio as aioredis

from app.store import Keys

KEY_PREFIX = "dry-"
_KEY_BYTES = 32
# What ``create`` issues: the prefix and 32 random bytes in unpadded base64url.
ISSUED_KEY_CHARS = len(KEY_PREFIX) + (_KEY_BYTES * 4 + 2) // 3


class ApiKeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    tier: str = "default"
    admin: bool = False
    created: int = 0
    # Needed in clear to sign this tenant's webhooks; it never leaves in a response after creation.
    webhook_secret: str = ""
    # The account-level webhook: used for every async job that names none ("" = none).
    webhook_url: str = ""


class IssuedKey(msgspec.Struct, frozen=True):
    id: str
    key: str
    name: str
    tier: str
    admin: bool
    webhook_secret: str
    webhook_url: str = ""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


_encode = msgspec.json.Encoder().encode
_decode_record = msgspec.json.Decoder(ApiKeyRecord).decode


class KeyStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def create(
        self, name: str, *, tier: str = "default", admin: bool = False, webhook_url: str = ""
    ) -> IssuedKey:
        """Issue a key; ``webhook_url`` must already have passed ``app.netguard.check_url``."""
        key = KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)
        record = ApiKeyRecord(
            id="key_" + secrets.token_hex(8),
            name=name,
            tier=tier,
            admin=admin,
            created=int(time.time()),
            webhook_secret="whsec_" + secrets.token_urlsafe(32),
            webhook_url=webhook_url,
        )
        hashed = digest(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.api_key(hashed), _encode(record))
            pipe.hset(self._keys.api_key_index, record.id, hashed)
            await pipe.execute()
        return IssuedKey(record.id, key, name, tier, admin, record.webhook_secret, webhook_url)

    async def lookup(self, key: str) -> ApiKeyRecord | None:
        raw = await self._redis.get(self._keys.api_key(digest(key)))
        return _decode_record(raw) if raw else None

    async def ids(self, *, batch: int = 500) -> AsyncIterator[list[str]]:
        """Every key's id, a batch at a time (HSCAN: never one huge reply)."""
        cursor = 0
        while True:
            cursor, found = await self._redis.hscan(self._keys.api_key_index, cursor, count=batch)
            if found:
                yield [_text(key_id) for key_id in found]
            if cursor == 0:
                return

    async def count(self) -> int:
        return int(await self._redis.hlen(self._keys.api_key_index))

    async def list(self) -> list[ApiKeyRecord]:
        index = await self._redis.hgetall(self._keys.api_key_index)
        records: list[ApiKeyRecord] = []
        for hashed in index.values():
            raw = await self._redis.get(self._keys.api_key(_text(hashed)))
            if raw:
                records.append(_decode_record(raw))
        return sorted(records, key=lambda r: r.created)

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        hashed = await self._redis.hget(self._keys.api_key_index, key_id)
        if not hashed:
            return None
        raw = await self._redis.get(self._keys.api_key(_text(hashed)))
        return _decode_record(raw) if raw else None

    async def set_webhook_url(self, key_id: str, url: str) -> ApiKeyRecord | None:
        """Replace the key's account-level webhook (``""`` clears it); None for an unknown key."""
        hashed = await self._redis.hget(self._keys.api_key_index, key_id)
        if not hashed:
            return None
        stored = self._keys.api_key(_text(hashed))
        raw = await self._redis.get(stored)
        if not raw:
            return None
        record = msgspec.structs.replace(_decode_record(raw), webhook_url=url)
        await self._redis.set(stored, _encode(record), xx=True)
        return record

    async def revoke(self, key_id: str) -> bool:
        hashed = await self._redis.hget(self._keys.api_key_index, key_id)
        if not hashed:
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.api_key(_text(hashed)))
            pipe.hdel(self._keys.api_key_index, key_id)
            await pipe.execute()
        return True
