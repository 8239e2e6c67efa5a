"""Webhook delivery settings from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from app.settings import SettingsError

# The seed's retry policy: the delay (seconds) before each attempt, measured from the previous one.
DEFAULT_SCHEDULE: tuple[float, ...] = (0, 60, 120, 300, 600, 1800, 3600, 10800, 21600, 43200)


class WebhookSettings(msgspec.Struct, frozen=True, kw_only=True):
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    allowlist: frozenset[str] = frozenset()
    timeout_s: float = 10.0
    breaker_threshold: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebhookSettings:
        """``DRYAPI_WEBHOOK_RETRY_SCHEDULE`` (comma-separated seconds), ``DRYAPI_WEBHOOK_ALLOWLIST``
        (comma-separated hosts or host:port), ``DRYAPI_WEBHOOK_TIMEOUT_S``, ``DRYAPI_WEBHOOK_BREAKER_THRESHOLD``."""
        env = os.environ if env is None else env
        return cls(
            schedule=parse_schedule(env.get("DRYAPI_WEBHOOK_RETRY_SCHEDULE")),
            allowlist=frozenset(
                h.strip().lower() for h in (env.get("DRYAPI_WEBHOOK_ALLOWLIST") or "").split(",") if h.strip()
            ),
            timeout_s=_positive(env, "DRYAPI_WEBHOOK_TIMEOUT_S", 10.0),
            breaker_threshold=int(_positive(env, "DRYAPI_WEBHOOK_BREAKER_THRESHOLD", 10)),
        )


def parse_schedule(raw: str | None) -> tuple[float, ...]:
    if raw is None or not raw.strip():
        return DEFAULT_SCHEDULE
    try:
        schedule = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise SettingsError(f"DRYAPI_WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds, got {raw!r}") from None
    if any(delay < 0 or delay != delay for delay in schedule):
        raise SettingsError("DRYAPI_WEBHOOK_RETRY_SCHEDULE delays must be >= 0")
    return schedule


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not value > 0:
        raise SettingsError(f"{name} must be > 0")
    return value
