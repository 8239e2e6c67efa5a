"""The server-edge settings: read from the environment, refused when they make no sense."""

from __future__ import annotations

import pytest

from app.settings import ServerLimits, SettingsError, load_server_limits, load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.server_limits == ServerLimits()
    assert settings.ws_per_key == 1000


def test_values_from_the_environment() -> None:
    env = {
        "DRYAPI_HEADER_TIMEOUT_S": "2.5",
        "DRYAPI_BODY_TIMEOUT_S": "4",
        "DRYAPI_MAX_HEADER_BYTES": "65536",
        "DRYAPI_WS_PER_KEY": "7",
    }
    settings = load_settings(env)
    assert settings.server_limits == ServerLimits(header_timeout_s=2.5, body_timeout_s=4.0, max_header_bytes=65536)
    assert settings.ws_per_key == 7


@pytest.mark.parametrize(
    ("name", "value"),
    [("DRYAPI_HEADER_TIMEOUT_S", "soon"), ("DRYAPI_BODY_TIMEOUT_S", "0"), ("DRYAPI_HEADER_TIMEOUT_S", "nan")],
)
def test_nonsense_is_refused(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_server_limits({name: value})
