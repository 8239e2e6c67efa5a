"""The signature recipe from the seed's Webhooks page, and the env settings."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from app.settings import SettingsError
from app.webhooks import DEFAULT_SCHEDULE, WebhookSettings, sign, verify


def seed_signature(secret: str, timestamp: str, body: str) -> str:
    # The seed's Python example, verbatim in substance.
    message = f"{timestamp}.{body}"
    return "sha256=" + hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def test_sign_matches_the_seed_recipe() -> None:
    body = '{"event":"job.completed","data":{"x":1}}'
    assert sign("whsec_s", "1705315800", body.encode()) == seed_signature("whsec_s", "1705315800", body)


def test_verify_accepts_fresh_and_rejects_everything_else() -> None:
    now = int(time.time())
    body = b'{"a":1}'
    header = sign("s1", str(now), body)
    assert verify("s1", str(now), body, header)
    assert not verify("s2", str(now), body, header)  # another tenant's secret
    assert not verify("s1", str(now), b'{"a":2}', header)  # tampered body
    assert not verify("s1", str(now + 1), body, header)  # another timestamp
    assert not verify("s1", str(now), body, header.removeprefix("sha256="))
    assert not verify("s1", "not-a-number", body, header)
    old = str(now - 301)
    assert not verify("s1", old, body, sign("s1", old, body))  # replay window is 5 minutes
    assert verify("s1", old, body, sign("s1", old, body), tolerance_s=600)


def test_settings_from_env() -> None:
    assert WebhookSettings.from_env({}) == WebhookSettings()
    assert WebhookSettings().schedule == DEFAULT_SCHEDULE == (0, 60, 120, 300, 600, 1800, 3600, 10800, 21600, 43200)
    settings = WebhookSettings.from_env(
        {
            "DRYAPI_WEBHOOK_RETRY_SCHEDULE": "0, 0.5,2",
            "DRYAPI_WEBHOOK_ALLOWLIST": "Hooks.Local, 127.0.0.1:9000 ,",
            "DRYAPI_WEBHOOK_TIMEOUT_S": "3",
            "DRYAPI_WEBHOOK_BREAKER_THRESHOLD": "4",
        }
    )
    assert settings.schedule == (0.0, 0.5, 2.0)
    assert settings.allowlist == frozenset({"hooks.local", "127.0.0.1:9000"})
    assert (settings.timeout_s, settings.breaker_threshold) == (3.0, 4)
    for bad in ("1,x", "0,-1"):
        with pytest.raises(SettingsError):
            WebhookSettings.from_env({"DRYAPI_WEBHOOK_RETRY_SCHEDULE": bad})
