"""POST /broadcasting/auth: a signature for the caller's own channel only, clear 4xx otherwise."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import pytest

from tests.gateway.conftest import Gateway
from tests.realtime.conftest import APP_KEY, APP_SECRET


def _expected(socket_id: str, channel: str) -> str:
    digest = hmac.new(APP_SECRET.encode(), f"{socket_id}:{channel}".encode(), hashlib.sha256).hexdigest()
    return f"{APP_KEY}:{digest}"


def test_form_and_json_bodies_get_the_pusher_signature(gateway: Gateway) -> None:
    owner = gateway.issue_key("auth-owner")
    channel, headers = f"private-client.{owner.id}", {"authorization": f"Bearer {owner.key}"}
    fields = {"socket_id": "123.456", "channel_name": channel}
    form = httpx.post(f"{gateway.url}/broadcasting/auth", data=fields, headers=headers)
    body = httpx.post(f"{gateway.url}/broadcasting/auth", json=fields, headers=headers)
    assert form.status_code == body.status_code == 200
    assert form.json() == body.json() == {"auth": _expected("123.456", channel)}


def test_another_keys_channel_is_forbidden(gateway: Gateway) -> None:
    mine, theirs = gateway.issue_key("auth-mine"), gateway.issue_key("auth-theirs")
    response = httpx.post(
        f"{gateway.url}/broadcasting/auth",
        json={"socket_id": "1.2", "channel_name": f"private-client.{theirs.id}"},
        headers={"authorization": f"Bearer {mine.key}"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["param"] == "channel_name"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({}, "socket_id", ["socket_id", "channel_name"]),
        ({"socket_id": "1.2"}, "channel_name", ["channel_name"]),
        ({"socket_id": "abc", "channel_name": "private-client.x"}, "socket_id", ["socket_id"]),
        ({"socket_id": "abc", "channel_name": "presence-room"}, "socket_id", ["socket_id", "channel_name"]),
        ({"socket_id": 12, "channel_name": "private-client.x"}, "socket_id", ["socket_id"]),
    ],
)
def test_bad_fields_are_named_in_a_400(gateway: Gateway, body: dict[str, object], param: str, words: list[str]) -> None:
    key = gateway.issue_key("auth-bad")
    response = httpx.post(
        f"{gateway.url}/broadcasting/auth", json=body, headers={"authorization": f"Bearer {key.key}"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and all(word in error["message"] for word in words)


def test_bodies_that_are_not_json_objects_are_400(gateway: Gateway) -> None:
    key = gateway.issue_key("auth-shape")
    headers = {"authorization": f"Bearer {key.key}", "content-type": "application/json"}
    for raw in (b"{", b"[1]", b"\xff"):
        response = httpx.post(f"{gateway.url}/broadcasting/auth", content=raw, headers=headers)
        assert response.status_code == 400, raw
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_a_bad_key_is_401(gateway: Gateway) -> None:
    gateway.issue_key("auth-someone")  # keys exist: no open mode
    response = httpx.post(
        f"{gateway.url}/broadcasting/auth",
        data={"socket_id": "1.2", "channel_name": "private-client.x"},
        headers={"authorization": "Bearer not-a-key"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
