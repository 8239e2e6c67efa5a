"""Realtime settings: the app key and secret are required where the signing secret is."""

from __future__ import annotations

import pytest

from app.settings import SettingsError, load_settings

BASE = {"DRYAPI_SIGNING_SECRET": "s"}


def test_loopback_runs_with_a_local_key_and_a_random_secret() -> None:
    first, second = load_settings({}), load_settings({})
    assert first.pusher_app_key == "dryapi-local" and first.pusher_url is None
    assert len(first.pusher_app_secret) == 64 and first.pusher_app_secret != second.pusher_app_secret


def test_a_non_loopback_bind_needs_the_key_and_secret() -> None:
    with pytest.raises(SettingsError, match="DRYAPI_PUSHER_APP_KEY and DRYAPI_PUSHER_APP_SECRET"):
        load_settings(BASE, host="0.0.0.0")
    env = BASE | {"DRYAPI_PUSHER_APP_KEY": "k", "DRYAPI_PUSHER_APP_SECRET": "x"}
    settings = load_settings(env, host="0.0.0.0")
    assert (settings.pusher_app_key, settings.pusher_app_secret) == ("k", "x")


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
