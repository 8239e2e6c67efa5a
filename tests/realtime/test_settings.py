"""Realtime settings: an external Pusher server needs its whole address; the built-in one can
derive its app secret from the signing secret every replica shares."""

from __future__ import annotations

import pytest

from app.realtime.protocol import local_app_secret
from app.settings import SettingsError, load_settings

BASE = {"DRYAPI_SIGNING_SECRET": "s"}


def test_loopback_runs_with_a_local_key_and_a_secret_derived_from_the_signing_secret() -> None:
    settings = load_settings({})
    assert settings.pusher_app_key == "dryapi-local" and settings.pusher_url is None
    assert settings.pusher_app_secret == ""  # the app derives it: every worker shares the signing secret
    derived = local_app_secret(settings.signing_secret)
    assert len(derived) == 64 and derived == local_app_secret(settings.signing_secret) != settings.signing_secret
    assert local_app_secret("another") != derived


def test_off_loopback_the_given_key_and_secret_are_used_or_the_secret_is_derived() -> None:
    env = BASE | {"DRYAPI_PUSHER_APP_KEY": "k", "DRYAPI_PUSHER_APP_SECRET": "x"}
    settings = load_settings(env, host="0.0.0.0")
    assert (settings.pusher_app_key, settings.pusher_app_secret) == ("k", "x")
    assert load_settings(BASE, host="0.0.0.0").pusher_app_secret == ""  # derived from DRYAPI_SIGNING_SECRET


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"DRYAPI_PUSHER_URL": "http://soketi:6001"}, "DRYAPI_PUSHER_APP_KEY"),
        ({"DRYAPI_PUSHER_URL": "soketi:6001", "DRYAPI_PUSHER_APP_KEY": "k", "DRYAPI_PUSHER_APP_SECRET": "x"},
         "http"),
        ({"DRYAPI_PUSHER_URL": "http://soketi:6001", "DRYAPI_PUSHER_APP_KEY": "k", "DRYAPI_PUSHER_APP_SECRET": "x"},
         "DRYAPI_PUSHER_APP_ID"),
    ],
)
def test_an_external_server_needs_its_whole_address(extra: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(extra)


def test_an_external_server() -> None:
    env = {"DRYAPI_PUSHER_URL": "https://soketi.example/", "DRYAPI_PUSHER_APP_ID": "7",
           "DRYAPI_PUSHER_APP_KEY": "k", "DRYAPI_PUSHER_APP_SECRET": "x"}
    settings = load_settings(env)
    assert (settings.pusher_url, settings.pusher_app_id) == ("https://soketi.example", "7")
