"""app/keys.py: keys are shown once and stored only as their SHA-256 digest (real Redis)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from app.keys import KEY_PREFIX, KeyStore, digest
from app.store import Keys


def test_digest_is_the_hex_sha256_of_the_key() -> None:
    assert digest("dry-abc") == hashlib.sha256(b"dry-abc").hexdigest()
    assert digest("dry-abc") != digest("dry-abd")
    assert len(digest("")) == 64


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[KeyStore, aioredis.Redis, str]]:
    prefix = f"{redis_prefix}keys-{uuid.uuid4().hex[:6]}:"
    client = aioredis.Redis.from_url(redis_url)
    yield KeyStore(client, Keys(prefix)), client, prefix
    await client.aclose()


async def _stored_bytes(client: aioredis.Redis, prefix: str) -> bytes:
    """Every key name and value under ``prefix``, as one blob to search."""
    blob = b""
    async for name in client.scan_iter(match=f"{prefix}*"):
        value = await client.hgetall(name) if await client.type(name) == b"hash" else {b"": await client.get(name)}
        blob += name + b"".join(k + (v or b"") for k, v in value.items())
    return blob


async def test_a_key_is_issued_once_and_never_stored_in_clear(store: tuple[KeyStore, aioredis.Redis, str]) -> None:
    keys, client, prefix = store
    issued = await keys.create("ci", tier="premium", admin=True)
    assert issued.key.startswith(KEY_PREFIX) and len(issued.key) > 40
    assert issued.id.startswith("key_") and issued.webhook_secret.startswith("whsec_")
    stored = await _stored_bytes(client, prefix)
    assert issued.key.encode() not in stored
    assert digest(issued.key).encode() in stored
    record = await keys.lookup(issued.key)
    assert record is not None
    assert (record.id, record.name, record.tier, record.admin) == (issued.id, "ci", "premium", True)
    assert await keys.lookup(issued.key + "x") is None


async def test_list_get_count_and_revoke(store: tuple[KeyStore, aioredis.Redis, str]) -> None:
    keys, _, _ = store
    first, second = await keys.create("a"), await keys.create("b")
    assert await keys.count() == 2
    assert {r.id for r in await keys.list()} == {first.id, second.id}
    fetched = await keys.get(second.id)
    assert fetched is not None and fetched.name == "b" and fetched.tier == "default" and not fetched.admin
    assert await keys.get("key_missing") is None
    assert await keys.revoke(first.id) is True
    assert await keys.revoke(first.id) is False
    assert await keys.lookup(first.key) is None
    assert [r.id for r in await keys.list()] == [second.id]
    assert await keys.count() == 1
