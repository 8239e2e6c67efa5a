"""Environment settings, read once into one immutable Struct."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from typing import Literal

import msgspec


class SettingsError(ValueError):
    """The environment describes a gateway that must not start."""


class ServerLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What the HTTP server grants one connection before the app sees a request (app/http_protocol.py)."""

    # The request line and headers must all arrive within this many seconds.
    header_timeout_s: float = 10.0
    # Each such window must bring at least BODY_MIN_BYTES of the body (or the rest of it).
    body_timeout_s: float = 15.0
    # Request line plus headers, in bytes; a bearer key is never near it.
    max_header_bytes: int = 32 * 1024


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    redis_url: str = "memory://"
    routing_path: str = "./routing.yaml"
    admin_key: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    signing_secret: str = ""
    signing_secret_is_random: bool = True
    file_ttl_s: int = 3600
    webhook_secret: str | None = None
    # `serve --local`: every model goes to its `local_endpoint` on this emulator base URL.
    local_upstream: str | None = None
    host: str = "127.0.0.1"
    key_cache_s: float = 30.0
    # Uploads up to this size travel inline as base64; larger ones are staged and sent as URLs.
    inline_audio_max_bytes: int = 7_000_000
    max_audio_bytes: int = 80 * 1024 * 1024
    redis_prefix: str = "dryapi:"
    # Hosts exempt from the private-address checks on client URLs (comma-separated in env).
    media_allowlist: frozenset[str] = frozenset()
    webhook_allowlist: frozenset[str] = frozenset()
    result_ttl_s: int = 3600
    # How long an MCP tool waits for its job before answering with the request id to poll.
    mcp_wait_s: float = 120.0
    # The most streamed output an async chat job may assemble; past it the job fails (output_too_large).
    stream_max_bytes: int = 16 * 1024 * 1024
    # Observability (app/observability): log format, browser origins, graceful shutdown.
    log_format: str = "auto"  # auto | json | console
    cors_origins: tuple[str, ...] = ()
    drain_s: int = 30  # in-flight requests get this long after SIGTERM
    shutdown_delay_s: int = 0  # /readyz is 503 this long before the listener closes
    # Seconds between routing.yaml content-hash checks; 0 turns polling off (SIGHUP and
    # POST /admin/routing/reload still reload, and reloads still broadcast).
    routing_poll_s: float = 1.0
    # When Redis fails: "open" admits keys already in the auth cache without limits; "closed" answers 503.
    redis_failure: Literal["open", "closed"] = "closed"
    # Bound on each Redis call of auth, limits and usage, so no request waits on a sick Redis.
    redis_timeout_s: float = 0.25
    # permessage-deflate on job WebSockets: two zlib streams cost ~35 KiB per socket, and
    # status frames are small (measured: bench/README.md), so it is off unless asked for.
    ws_compression: bool = False
    # Status polls per second this process may spend sweeping jobs for lost callbacks (RunPod
    # allows 2,000 /status calls per 10 s per endpoint); fast polls of watched jobs come on top.
    sweep_rate: float = 100.0
    # Days every ledger entry (hold, settle, refund, top-up) is kept (app/billing/ledger.py).
    ledger_ttl_days: int = 90
    # Realtime job events over the Pusher Channels protocol (app/realtime). With ``pusher_url``
    # set, events go through that Pusher/soketi server's HTTP API and the built-in one is off.
    pusher_app_key: str = "dryapi-local"
    pusher_app_secret: str = ""  # "": derived from signing_secret by the app (built-in server only)
    pusher_url: str | None = None
    pusher_app_id: str | None = None
    # Job WebSockets one key may hold open in this process (further opens close with 4429).
    ws_per_key: int = 1000
    server_limits: ServerLimits = ServerLimits()

    @property
    def loopback(self) -> bool:
        return is_loopback_host(self.host)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise SettingsError(f"{name} must be >= 0")
    return value


def load_settings(env: Mapping[str, str] | None = None, *, host: str | None = None) -> Settings:
    """Build settings from the environment; ``host`` is the bind address (it decides secrets)."""
    env = os.environ if env is None else env
    bind = host or env.get("DRYAPI_HOST", "127.0.0.1")
    secret = env.get("DRYAPI_SIGNING_SECRET", "")
    if not secret and not is_loopback_host(bind):
        raise SettingsError(
            "DRYAPI_SIGNING_SECRET is required on a non-loopback bind "
            "(every replica must share it to verify signed URLs and callbacks)"
        )
    port = env.get("DRYAPI_PORT", "8000")
    pusher_key, pusher_secret, pusher_url, pusher_app_id = _pusher(env)
    return Settings(
        redis_url=env.get("REDIS_URL", "memory://") or "memory://",
        routing_path=env.get("DRYAPI_ROUTING", "./routing.yaml"),
        admin_key=env.get("DRYAPI_ADMIN_KEY") or None,
        public_url=(env.get("DRYAPI_PUBLIC_URL") or f"http://127.0.0.1:{port}").rstrip("/"),
        signing_secret=secret or secrets.token_hex(32),
        signing_secret_is_random=not secret,
        file_ttl_s=_int(env, "DRYAPI_FILE_TTL_S", 3600),
        webhook_secret=env.get("DRYAPI_WEBHOOK_SECRET") or None,
        local_upstream=env.get("DRYAPI_LOCAL_UPSTREAM") or None,
        host=bind,
        key_cache_s=float(_int(env, "DRYAPI_KEY_CACHE_S", 30)),
        redis_prefix=env.get("DRYAPI_REDIS_PREFIX", "dryapi:"),
        media_allowlist=_hosts(env.get("DRYAPI_MEDIA_ALLOWLIST")),
        webhook_allowlist=_hosts(env.get("DRYAPI_WEBHOOK_ALLOWLIST")),
        result_ttl_s=_int(env, "DRYAPI_RESULT_TTL_S", 3600),
        mcp_wait_s=float(_int(env, "DRYAPI_MCP_WAIT_S", 120)),
        stream_max_bytes=_int(env, "DRYAPI_STREAM_MAX_BYTES", 16 * 1024 * 1024),
        log_format=_log_format(env.get("DRYAPI_LOG_FORMAT")),
        cors_origins=tuple(dict.fromkeys(o.strip().rstrip("/") for o in _hosts_raw(env, "DRYAPI_CORS_ORIGINS"))),
        drain_s=_int(env, "DRYAPI_DRAIN_S", 30),
        shutdown_delay_s=_int(env, "DRYAPI_SHUTDOWN_DELAY_S", 0),
        routing_poll_s=_routing_poll_s(env),
        redis_failure=_redis_failure(env.get("DRYAPI_REDIS_FAILURE") or "closed"),
        redis_timeout_s=max(1, _int(env, "DRYAPI_REDIS_TIMEOUT_MS", 250)) / 1000,
        ws_compression=_flag(env, "DRYAPI_WS_COMPRESSION"),
        sweep_rate=float(max(1, _int(env, "DRYAPI_SWEEP_RATE", 100))),
        ledger_ttl_days=max(1, _int(env, "DRYAPI_LEDGER_TTL_DAYS", 90)),
        pusher_app_key=pusher_key,
        pusher_app_secret=pusher_secret,
        pusher_url=pusher_url,
        pusher_app_id=pusher_app_id,
        ws_per_key=max(1, _int(env, "DRYAPI_WS_PER_KEY", 1000)),
        server_limits=load_server_limits(env),
    )


def _pusher(env: Mapping[str, str]) -> tuple[str, str, str | None, str | None]:
    """(app key, app secret, external server URL, external app id) for realtime events."""
    key = env.get("DRYAPI_PUSHER_APP_KEY", "")
    secret = env.get("DRYAPI_PUSHER_APP_SECRET", "")
    url = (env.get("DRYAPI_PUSHER_URL") or "").rstrip("/") or None
    app_id = env.get("DRYAPI_PUSHER_APP_ID") or None
    if (not key or not secret) and url:
        raise SettingsError("DRYAPI_PUSHER_APP_KEY and DRYAPI_PUSHER_APP_SECRET are required with DRYAPI_PUSHER_URL")
    if url is not None:
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"DRYAPI_PUSHER_URL must be an http(s) URL, got {url!r}")
        if not app_id:
            raise SettingsError("DRYAPI_PUSHER_APP_ID is required with DRYAPI_PUSHER_URL")
    # Unset (built-in server): the app derives one from the signing secret, which every replica
    # shares and which is required off loopback; the secret never leaves the gateway.
    return key or "dryapi-local", secret, url, app_id


def load_server_limits(env: Mapping[str, str] | None = None) -> ServerLimits:
    env = os.environ if env is None else env
    return ServerLimits(
        header_timeout_s=_seconds(env, "DRYAPI_HEADER_TIMEOUT_S", 10.0),
        body_timeout_s=_seconds(env, "DRYAPI_BODY_TIMEOUT_S", 15.0),
        max_header_bytes=max(1024, _int(env, "DRYAPI_MAX_HEADER_BYTES", 32 * 1024)),
    )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0:  # also refuses NaN
        raise SettingsError(f"{name} must be > 0")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "off", "no"):
        return False
    if raw in ("1", "true", "on", "yes"):
        return True
    raise SettingsError(f"{name} must be on or off, got {raw!r}")


def _routing_poll_s(env: Mapping[str, str]) -> float:
    raw = env.get("DRYAPI_ROUTING_POLL_S") or "1"
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"DRYAPI_ROUTING_POLL_S must be a number of seconds, got {raw!r}") from None
    if not value >= 0:  # also refuses NaN
        raise SettingsError("DRYAPI_ROUTING_POLL_S must be >= 0")
    return value


def _redis_failure(raw: str) -> Literal["open", "closed"]:
    value = raw.strip().lower()
    if value == "open":
        return "open"
    if value == "closed":
        return "closed"
    raise SettingsError(f"DRYAPI_REDIS_FAILURE must be open or closed, got {raw!r}")


def _log_format(raw: str | None) -> str:
    value = (raw or "auto").strip().lower()
    if value not in ("auto", "json", "console"):
        raise SettingsError(f"DRYAPI_LOG_FORMAT must be auto, json or console, got {raw!r}")
    return value


def _hosts_raw(env: Mapping[str, str], name: str) -> list[str]:
    return [item.strip() for item in (env.get(name) or "").split(",") if item.strip()]


def _hosts(raw: str | None) -> frozenset[str]:
    return frozenset(h.strip().lower() for h in (raw or "").split(",") if h.strip())
