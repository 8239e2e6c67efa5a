"""The Redis connection: a real server for ``redis://``, an in-process fake for ``memory://``."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

MEMORY_SCHEME = "memory://"
MAX_CONNECTIONS = 128


def is_memory_url(url: str) -> bool:
    return url.startswith(MEMORY_SCHEME)


def create_redis(url: str) -> aioredis.Redis:
    """One client (with its own pool) per process; bytes in, bytes out."""
    if is_memory_url(url):
        import fakeredis  # only the local one-command start needs it

        return fakeredis.FakeAsyncRedis(decode_responses=False)
    # A bounded pool that makes callers wait for a free connection (up to 5 s) instead of
    # failing: thousands of WebSockets opening at once must queue, not error.
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=5.0,
        decode_responses=False,
        socket_timeout=5.0,
        socket_connect_timeout=2.0,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)


class Keys:
    """Every Redis key the gateway writes, under one prefix so tests and tenants can share a server."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def api_key(self, digest: str) -> str:
        return f"{self.prefix}apikey:{digest}"

    @property
    def api_key_index(self) -> str:
        return f"{self.prefix}apikeys"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def file(self, file_id: str) -> str:
        return f"{self.prefix}file:{file_id}"

    def idempotency(self, key_id: str, digest: str) -> str:
        return f"{self.prefix}idem:{key_id}:{digest}"

    def custom(self, *parts: Any) -> str:
        return self.prefix + ":".join(str(p) for p in parts)
