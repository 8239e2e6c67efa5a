"""app/settings.py: the environment read into Settings, and every bad value refused by name."""

from __future__ import annotations

import pytest

from app.settings import Settings, SettingsError, is_loopback_host, load_settings


def test_an_empty_environment_is_a_local_development_gateway() -> None:
    settings = load_settings({})
    assert settings.redis_url == "memory://"
    assert settings.host == "127.0.0.1" and settings.loopback
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.signing_secret_is_random and len(settings.signing_secret) == 64
    assert load_settings({}).signing_secret != settings.signing_secret  # a fresh one each start
    assert settings.admin_key is None and settings.webhook_secret is None
    assert (settings.redis_failure, settings.redis_timeout_s, settings.routing_poll_s) == ("closed", 0.25, 1.0)
    assert settings == Settings(signing_secret=settings.signing_secret)  # the same defaults as the Struct


def test_a_given_signing_secret_is_used_and_marked_as_such() -> None:
    settings = load_settings({"DRYAPI_SIGNING_SECRET": "s" * 40, "DRYAPI_HOST": "0.0.0.0"})
    assert (settings.signing_secret, settings.signing_secret_is_random) == ("s" * 40, False)
    assert not settings.loopback


def test_a_non_loopback_bind_needs_a_signing_secret() -> None:
    with pytest.raises(SettingsError, match="DRYAPI_SIGNING_SECRET"):
        load_settings({"DRYAPI_HOST": "0.0.0.0"})
    with pytest.raises(SettingsError, match="DRYAPI_SIGNING_SECRET"):
        load_settings({"DRYAPI_HOST": "127.0.0.1"}, host="10.0.0.2")  # the --host flag wins
    assert load_settings({"DRYAPI_HOST": "0.0.0.0"}, host="::1").host == "::1"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.1", False), ("example.com", False), ("", False)],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_urls_and_empty_values() -> None:
    settings = load_settings({
        "REDIS_URL": "",
        "DRYAPI_PORT": "9000",
        "DRYAPI_ADMIN_KEY": "",
        "DRYAPI_LOCAL_UPSTREAM": "",
        "DRYAPI_FILE_TTL_S": "",
    })
    assert settings.redis_url == "memory://"
    assert settings.public_url == "http://127.0.0.1:9000"
    assert settings.admin_key is None and settings.local_upstream is None
    assert settings.file_ttl_s == 3600
    assert load_settings({"DRYAPI_PUBLIC_URL": "https://api.example.com/"}).public_url == "https://api.example.com"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DRYAPI_FILE_TTL_S", "1h", "DRYAPI_FILE_TTL_S must be an integer, got '1h'"),
        ("DRYAPI_RESULT_TTL_S", "-1", "DRYAPI_RESULT_TTL_S must be >= 0"),
        ("DRYAPI_KEY_CACHE_S", "0.5", "DRYAPI_KEY_CACHE_S must be an integer"),
        ("DRYAPI_WS_COMPRESSION", "maybe", "DRYAPI_WS_COMPRESSION must be on or off, got 'maybe'"),
        ("DRYAPI_ROUTING_POLL_S", "soon", "DRYAPI_ROUTING_POLL_S must be a number of seconds"),
        ("DRYAPI_ROUTING_POLL_S", "-1", "DRYAPI_ROUTING_POLL_S must be >= 0"),
        ("DRYAPI_ROUTING_POLL_S", "nan", "DRYAPI_ROUTING_POLL_S must be >= 0"),
        ("DRYAPI_REDIS_FAILURE", "sometimes", "DRYAPI_REDIS_FAILURE must be open or closed"),
        ("DRYAPI_LOG_FORMAT", "xml", "DRYAPI_LOG_FORMAT must be auto, json or console"),
    ],
)
def test_bad_values_are_refused_by_name(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value})
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("raw", "on"), [("", False), ("0", False), ("off", False), ("No", False),
                                         ("1", True), (" ON ", True), ("true", True), ("yes", True)])
def test_flags(raw: str, on: bool) -> None:
    assert load_settings({"DRYAPI_WS_COMPRESSION": raw}).ws_compression is on


def test_choices_are_case_insensitive() -> None:
    settings = load_settings({"DRYAPI_REDIS_FAILURE": " Open ", "DRYAPI_LOG_FORMAT": "JSON"})
    assert (settings.redis_failure, settings.log_format) == ("open", "json")


def test_host_lists_are_trimmed_lowercased_and_deduplicated() -> None:
    settings = load_settings({
        "DRYAPI_MEDIA_ALLOWLIST": " Media.Local, ,127.0.0.1,media.local",
        "DRYAPI_WEBHOOK_ALLOWLIST": "",
        "DRYAPI_CORS_ORIGINS": "https://b.example/, https://a.example,https://b.example",
    })
    assert settings.media_allowlist == frozenset({"media.local", "127.0.0.1"})
    assert settings.webhook_allowlist == frozenset()
    assert settings.cors_origins == ("https://b.example", "https://a.example")  # first-seen order


def test_numbers_have_floors() -> None:
    settings = load_settings({"DRYAPI_REDIS_TIMEOUT_MS": "0", "DRYAPI_SWEEP_RATE": "0", "DRYAPI_ROUTING_POLL_S": "0"})
    assert settings.redis_timeout_s == 0.001  # never an unbounded wait
    assert settings.sweep_rate == 1.0
    assert settings.routing_poll_s == 0.0  # polling off
    assert load_settings({"DRYAPI_REDIS_TIMEOUT_MS": "1500"}).redis_timeout_s == 1.5
