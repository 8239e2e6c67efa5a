"""Who is calling: bearer keys checked against Redis through a short in-process cache.

The cache is keyed by the key's digest and bounded (LRU, ``CACHE_ENTRIES``), so unknown keys
sent by the thousand cost a fixed amount of memory; a bearer longer than any key we issue is
refused before it is hashed or looked up.

While no key exists and the bind is loopback the gateway runs open (every caller is the
local operator); the first key created ends open mode within ``OPEN_MODE_RECHECK_S``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from app.errors import AuthenticationFailed, PermissionDenied, Unavailable
from app.keys import ISSUED_KEY_CHARS, ApiKeyRecord, KeyStore
from app.redis_guard import RedisGuard, RedisUnavailable
from app.scope import scope_header, scope_query_param

OPEN_MODE_RECHECK_S = 1.0
_NEGATIVE_CACHE_S = 2.0
CACHE_ENTRIES = 10_000
# Room above the issued length for keys of a future format; anything longer is no key of ours.
MAX_KEY_CHARS = max(128, ISSUED_KEY_CHARS)


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    tier: str = "default"
    admin: bool = False
    webhook_secret: str | None = None
    open_mode: bool = False


OPEN_PRINCIPAL = Principal(key_id="open", admin=True, open_mode=True)


class Authenticator:
    def __init__(
        self,
        store: KeyStore,
        *,
        admin_key: str | None,
        allow_open: bool,
        cache_s: float,
        default_webhook_secret: str | None,
        guard: RedisGuard | None = None,
        fail_open: bool = False,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        self._store = store
        # Shared with the limiter and usage: one breaker per process for one Redis.
        self.guard = guard or RedisGuard()
        self.fail_open = fail_open
        self._admin_key = admin_key
        self._allow_open = allow_open
        self._cache_s = cache_s
        self._default_secret = default_webhook_secret
        # digest -> (expires at, principal or None for an unknown key), least recently used first.
        self._cache: OrderedDict[bytes, tuple[float, Principal | None]] = OrderedDict()
        self._cache_entries = cache_entries
        self._max_key_chars = max(MAX_KEY_CHARS, len(admin_key or ""))
        self._open_until = 0.0
        self._open = False

    async def is_open(self) -> bool:
        if not self._allow_open or self._admin_key:
            return False
        now = time.monotonic()
        if now >= self._open_until:
            try:
                self._open = await self.guard.run(self._store.count) == 0
            except RedisUnavailable:
                return False  # without Redis nobody can tell whether keys exist: never open
            self._open_until = now + OPEN_MODE_RECHECK_S
        return self._open

    def _principal(self, record: ApiKeyRecord) -> Principal:
        return Principal(
            key_id=record.id,
            tier=record.tier,
            admin=record.admin,
            webhook_secret=record.webhook_secret or self._default_secret,
        )

    async def authenticate(self, key: str | None) -> Principal:
        if not key:
            if await self.is_open():
                return OPEN_PRINCIPAL
            raise AuthenticationFailed("Missing API key: send 'Authorization: Bearer <key>'")
        if len(key) > self._max_key_chars:
            raise AuthenticationFailed("Incorrect API key provided")
        if self._admin_key and hmac.compare_digest(key.encode(), self._admin_key.encode()):
            return Principal(key_id="admin", admin=True, webhook_secret=self._default_secret)
        now = time.monotonic()
        hashed = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        cached = self._cache.get(hashed)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(hashed)
            principal = cached[1]
        else:
            try:
                record = await self.guard.run(lambda: self._store.lookup(key))
            except RedisUnavailable as exc:
                # A key this process has seen passes on its stale entry in fail-open mode;
                # an unknown key is never admitted without Redis.
                if self.fail_open and cached is not None and cached[1] is not None:
                    return cached[1]
                raise Unavailable("API keys cannot be checked right now", retry_after_s=exc.retry_after_s) from None
            principal = self._principal(record) if record else None
            self._remember(hashed, (now + (self._cache_s if principal else _NEGATIVE_CACHE_S), principal))
        if principal is not None:
            return principal
        if await self.is_open():
            return OPEN_PRINCIPAL
        raise AuthenticationFailed("Incorrect API key provided")

    def _remember(self, hashed: bytes, entry: tuple[float, Principal | None]) -> None:
        self._cache[hashed] = entry
        self._cache.move_to_end(hashed)
        while len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)

    @property
    def cached_entries(self) -> int:
        return len(self._cache)


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = scope_header(connection.scope, b"authorization")
    if header:
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else header.strip()
    if connection.scope["type"] == ScopeType.WEBSOCKET:
        # Browsers cannot set headers on a WebSocket; the query value is never logged.
        return scope_query_param(connection.scope, "api_key")
    return None


class AuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        authenticator: Authenticator = connection.app.state.authenticator
        principal = await authenticator.authenticate(bearer_token(connection))
        return AuthenticationResult(user=principal, auth=None)


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise AuthenticationFailed("Missing API key: send 'Authorization: Bearer <key>'")
    return user


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: Any) -> None:
    """Litestar guard for operator-only routes.

    ``OPTIONS`` passes: authentication skips it (CORS preflights carry no key), and Litestar's
    own OPTIONS answer is only the route's ``Allow`` header, public in the schema anyway.
    """
    if connection.scope.get("method") == "OPTIONS":
        return
    if not principal_of(connection).admin:
        raise PermissionDenied("This route requires an admin key")
