"""Where the job tracker's realtime events go: Redis (the built-in Pusher server on every
replica reads them) or an external Pusher/soketi server's HTTP API."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pusher
import structlog
from pusher.aiohttp import AsyncIOBackend

from app.realtime.protocol import STATUS_EVENT, channel_for
from app.services import Services

log = structlog.get_logger("dryapi.realtime")

_encode = msgspec.json.encode
MAX_IN_FLIGHT = 1000  # HTTP publishes waiting at once; past it an event is dropped (and logged)


class RedisBroadcaster:
    def __init__(self, services: Services) -> None:
        self._redis = services.redis
        self._keys = services.keys

    async def broadcast(self, owner: str, event: dict[str, Any]) -> None:
        await self._redis.publish(self._keys.realtime_events(owner), _encode(event))


class PusherBroadcaster:
    """Publishes with the official ``pusher`` library, off the tracker's path: a slow Pusher
    server delays no job."""

    def __init__(self, url: str, app_id: str, key: str, secret: str, timeout_s: float = 5.0) -> None:
        parts = urlsplit(url)
        ssl = parts.scheme == "https"
        self._client = pusher.Pusher(
            app_id=app_id,
            key=key,
            secret=secret,
            host=parts.hostname,
            port=parts.port or (443 if ssl else 80),
            ssl=ssl,
            timeout=timeout_s,
            backend=AsyncIOBackend,
        )
        self._in_flight: set[asyncio.Task[None]] = set()

    async def broadcast(self, owner: str, event: dict[str, Any]) -> None:
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            log.warning("realtime_publish_dropped", reason="too many publishes in flight")
            return
        task = asyncio.create_task(self._trigger(channel_for(owner), event))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _trigger(self, channel: str, event: dict[str, Any]) -> None:
        try:
            await self._client.trigger(channel, STATUS_EVENT, event)
        except Exception as exc:
            log.warning("realtime_publish_failed", error_type=type(exc).__name__)

    async def aclose(self) -> None:
        """Waits for publishes in flight (shutdown)."""
        if self._in_flight:
            await asyncio.wait(tuple(self._in_flight), timeout=5.0)
