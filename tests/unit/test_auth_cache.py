"""The key cache: bounded whatever callers send, keyed by digest, and long keys never looked up."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator

import pytest

from app.auth import MAX_KEY_CHARS, Authenticator
from app.errors import AuthenticationFailed, Unavailable
from app.keys import ISSUED_KEY_CHARS, KeyStore
from app.redis_guard import RedisGuard
from app.store import Keys, create_redis


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[KeyStore]:
    redis = create_redis(redis_url)
    yield KeyStore(redis, Keys(f"{redis_prefix}auth{uuid.uuid4().hex[:6]}:"))
    await redis.aclose()


def _authenticator(store: KeyStore, **options: object) -> Authenticator:
    return Authenticator(
        store,
        admin_key=None,
        allow_open=False,
        cache_s=30,
        default_webhook_secret=None,
        **options,  # type: ignore[arg-type]
    )


async def test_issued_keys_fit_the_length_cap(store: KeyStore) -> None:
    issued = await store.create("t")
    assert len(issued.key) == ISSUED_KEY_CHARS <= MAX_KEY_CHARS


async def test_unknown_keys_never_grow_the_cache_past_its_bound(store: KeyStore) -> None:
    auth = _authenticator(store, cache_entries=50)
    issued = await store.create("t")
    assert (await auth.authenticate(issued.key)).key_id.startswith("key_")
    for _ in range(200):
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(secrets.token_urlsafe(32))
        await auth.authenticate(issued.key)  # used all along: never the one evicted
    assert auth.cached_entries == 50
    assert issued.key.encode() not in auth._cache  # entries are digests, not keys


async def test_a_key_longer_than_any_we_issue_is_refused_before_lookup() -> None:
    # Redis here is unreachable: a lookup would be a 503, so a 401 proves there was none.
    redis = create_redis("redis://127.0.0.1:1/0")
    auth = _authenticator(KeyStore(redis, Keys("x:")), guard=RedisGuard(timeout_s=0.2))
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate("k" * (MAX_KEY_CHARS + 1))
    with pytest.raises(Unavailable):
        await auth.authenticate("k" * MAX_KEY_CHARS)
    assert auth.cached_entries == 0
    await redis.aclose()


async def test_a_long_admin_key_still_works(store: KeyStore) -> None:
    admin_key = "a" * 500
    auth = Authenticator(store, admin_key=admin_key, allow_open=False, cache_s=30, default_webhook_secret=None)
    assert (await auth.authenticate(admin_key)).admin
