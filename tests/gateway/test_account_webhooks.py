"""The reference's Webhooks routes: account-level webhook_url, resuming paused deliveries, test deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.webhooks import WebhookSettings
from tests.gateway.conftest import Gateway, start_gateway, unique
from tests.support.servers import ServerThread
from tests.webhooks.receiver import Arrival, Receiver

# One failed delivery (one attempt) pauses a key: the breaker is quick to trip here.
FAST = WebhookSettings(schedule=(0,), timeout_s=2, breaker_threshold=1)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    hooks = Receiver()
    server = ServerThread(hooks).start()
    yield hooks, server.url
    server.stop()


@pytest.fixture(scope="module")
def hooked(emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    gw = start_gateway(
        f"{emulator.url}/v2", redis_url, f"{redis_prefix}acct-{unique()}:",
        webhook_allowlist=frozenset({"127.0.0.1"}), webhooks=FAST, admin_key="acct-admin",
    )
    yield gw
    gw.server.stop()


def _auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _arrivals(hooks: Receiver, token: str, count: int, timeout: float = 15) -> list[Arrival]:
    deadline = time.monotonic() + timeout
    while len(hooks.at(token)) < count:
        assert time.monotonic() < deadline, hooks.at(token)
        time.sleep(0.05)
    return hooks.at(token)


def _signed_by(secret: str, arrival: Arrival) -> bool:
    message = f"{arrival.headers['x-dryapi-timestamp']}.".encode() + arrival.body
    expected = "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, arrival.headers["x-dryapi-signature"])


# POST /v1/webhooks/test ------------------------------------------------------------------


def test_test_delivery_is_signed_with_the_callers_secret(hooked: Gateway, receiver: tuple[Receiver, str]) -> None:
    hooks, base = receiver
    tenant = hooked.issue_key("tester")
    token = unique()
    response = httpx.post(
        f"{hooked.url}/v1/webhooks/test", json={"webhook_url": f"{base}/{token}/ok"}, headers=_auth(tenant.key)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["event"] == "job.completed"
    assert body["job_id"].startswith("test_")
    [arrival] = _arrivals(hooks, token, 1)
    assert arrival.headers["x-dryapi-event"] == "job.completed"
    assert _signed_by(tenant.webhook_secret, arrival)
    payload = json.loads(arrival.body)
    assert payload["event"] == "job.completed"
    assert payload["data"]["job_request_id"] == body["job_id"]
    assert payload["data"]["status"] == "done"


def test_test_delivery_takes_event_and_data(hooked: Gateway, receiver: tuple[Receiver, str]) -> None:
    hooks, base = receiver
    tenant = hooked.issue_key("tester")
    token = unique()
    response = httpx.post(
        f"{hooked.url}/v1/webhooks/test",
        json={
            "webhook_url": f"{base}/{token}/ok",
            "event": "job.failed",
            "data": {"note": "hi", "job_request_id": "x"},
        },
        headers=_auth(tenant.key),
    )
    assert response.status_code == 200
    [arrival] = _arrivals(hooks, token, 1)
    payload = json.loads(arrival.body)
    assert payload["event"] == "job.failed" == response.json()["event"]
    assert payload["data"]["note"] == "hi"
    assert payload["data"]["job_request_id"] == response.json()["job_id"]  # never a caller-chosen job id


def test_test_delivery_is_retried_through_the_outbox(
    emulator: ServerThread, redis_url: str, redis_prefix: str, receiver: tuple[Receiver, str]
) -> None:
    hooks, base = receiver
    gw = start_gateway(
        f"{emulator.url}/v2", redis_url, f"{redis_prefix}acct-retry-{unique()}:",
        webhook_allowlist=frozenset({"127.0.0.1"}), webhooks=WebhookSettings(schedule=(0, 0.2, 0.2), timeout_s=2),
    )
    try:
        tenant = gw.issue_key("retry")
        token = unique()
        response = httpx.post(
            f"{gw.url}/v1/webhooks/test", json={"webhook_url": f"{base}/{token}/fail1"}, headers=_auth(tenant.key)
        )
        assert response.status_code == 200
        first, second = _arrivals(hooks, token, 2)
        assert (first.status, second.status) == (500, 200)
        assert first.delivery_id == second.delivery_id
    finally:
        gw.server.stop()


@pytest.mark.parametrize(
    "url",
    ["http://example.com/hook", "https://10.0.0.1/hook", "https://100.100.100.200/latest", "ftp://example.com/x",
     "not a url"],
)
def test_test_delivery_refuses_bad_destinations(hooked: Gateway, url: str) -> None:
    tenant = hooked.issue_key("tester")
    response = httpx.post(f"{hooked.url}/v1/webhooks/test", json={"webhook_url": url}, headers=_auth(tenant.key))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_webhook_url" and error["param"] == "webhook_url"


def test_test_delivery_validates_event(hooked: Gateway) -> None:
    tenant = hooked.issue_key("tester")
    response = httpx.post(
        f"{hooked.url}/v1/webhooks/test",
        json={"webhook_url": "https://example.com/h", "event": "job.exploded"},
        headers=_auth(tenant.key),
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "event"


def test_webhook_routes_need_a_key(hooked: Gateway) -> None:
    for method, path in (("POST", "/v1/webhooks/test"), ("GET", "/v1/webhooks/settings"),
                         ("PUT", "/v1/webhooks/settings"), ("POST", "/v1/webhooks/settings/resume")):
        response = httpx.request(method, f"{hooked.url}{path}", json={"webhook_url": "https://example.com/h"})
        assert response.status_code == 401, (method, path)
        assert response.json()["error"]["type"] == "authentication_error"


# account-level webhook_url ---------------------------------------------------------------


def test_account_webhook_is_used_for_jobs_that_name_none(hooked: Gateway, receiver: tuple[Receiver, str]) -> None:
    hooks, base = receiver
    tenant = hooked.issue_key("account")
    token = unique()
    put = httpx.put(
        f"{hooked.url}/v1/webhooks/settings", json={"webhook_url": f"{base}/{token}/ok"}, headers=_auth(tenant.key)
    )
    assert put.status_code == 200, put.text
    assert put.json()["webhook_url"] == f"{base}/{token}/ok"
    got = httpx.get(f"{hooked.url}/v1/webhooks/settings", headers=_auth(tenant.key)).json()
    assert got == {"webhook_url": f"{base}/{token}/ok", "paused": False, "consecutive_failures": 0, "pending": 0}

    enqueued = httpx.post(
        f"{hooked.url}/v1/embeddings", json={"input": "account hook"},
        headers=_auth(tenant.key) | {"prefer": "respond-async"},
    )
    assert enqueued.status_code == 202
    job_id = enqueued.json()["id"]
    deadline = time.monotonic() + 15
    while not [a for a in hooks.at(token) if a.headers.get("x-dryapi-event") == "job.completed"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    completed = [a for a in hooks.at(token) if a.headers.get("x-dryapi-event") == "job.completed"]
    assert json.loads(completed[0].body)["data"]["job_request_id"] == job_id
    assert _signed_by(tenant.webhook_secret, completed[0])

    # A job naming its own webhook_url keeps it.
    own = unique()
    named = httpx.post(
        f"{hooked.url}/v1/embeddings", json={"input": "own hook", "webhook_url": f"{base}/{own}/ok"},
        headers=_auth(tenant.key),
    )
    assert named.status_code == 202
    _arrivals(hooks, own, 1)

    cleared = httpx.put(f"{hooked.url}/v1/webhooks/settings", json={"webhook_url": None}, headers=_auth(tenant.key))
    assert cleared.json()["webhook_url"] is None


def test_other_keys_do_not_inherit_an_account_webhook(hooked: Gateway, receiver: tuple[Receiver, str]) -> None:
    _, base = receiver
    owner, other = hooked.issue_key("owner"), hooked.issue_key("other")
    token = unique()
    assert httpx.put(
        f"{hooked.url}/v1/webhooks/settings", json={"webhook_url": f"{base}/{token}/ok"}, headers=_auth(owner.key)
    ).status_code == 200
    assert httpx.get(f"{hooked.url}/v1/webhooks/settings", headers=_auth(other.key)).json()["webhook_url"] is None


@pytest.mark.parametrize("url", ["http://example.com/hook", "https://100.64.0.1/x", "https://[2002:7f00:1::]/x"])
def test_account_webhook_is_ssrf_checked(hooked: Gateway, url: str) -> None:
    tenant = hooked.issue_key("ssrf")
    response = httpx.put(f"{hooked.url}/v1/webhooks/settings", json={"webhook_url": url}, headers=_auth(tenant.key))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_webhook_url"


def test_env_admin_key_has_no_stored_settings(hooked: Gateway) -> None:
    response = httpx.put(
        f"{hooked.url}/v1/webhooks/settings", json={"webhook_url": "https://example.com/h"},
        headers=_auth("acct-admin"),
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "key_has_no_settings"


def test_a_key_resumes_its_own_paused_deliveries(hooked: Gateway, receiver: tuple[Receiver, str]) -> None:
    _, base = receiver
    tenant, bystander = hooked.issue_key("breaker"), hooked.issue_key("bystander")
    token = unique()
    httpx.post(f"{hooked.url}/v1/webhooks/test", json={"webhook_url": f"{base}/{token}/status500"},
               headers=_auth(tenant.key))
    deadline = time.monotonic() + 15
    state: dict[str, Any] = {}
    while not state.get("paused"):
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
        state = httpx.get(f"{hooked.url}/v1/webhooks/settings", headers=_auth(tenant.key)).json()
    assert state["consecutive_failures"] >= 1

    other = httpx.post(f"{hooked.url}/v1/webhooks/settings/resume", headers=_auth(bystander.key)).json()
    assert other["resumed"] is False  # another key's resume touches only its own breaker
    assert httpx.get(f"{hooked.url}/v1/webhooks/settings", headers=_auth(tenant.key)).json()["paused"] is True

    resumed = httpx.post(f"{hooked.url}/v1/webhooks/settings/resume", headers=_auth(tenant.key))
    assert resumed.status_code == 200
    assert resumed.json()["resumed"] is True and resumed.json()["paused"] is False


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"[" * 5000 + b"]" * 5000, None),
        (b'{"webhook_url": "https://example.com/x", "data": ' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"}", None),
        (b"{}", "webhook_url"),
        (b'{"webhook_url": 5}', "webhook_url"),
        (b'{"webhook_url": "https://example.com/x", "surprise": 1}', "surprise"),
        (b'{"webhook_url": "https://example.com/x", "data": {"blob": "' + b"x" * 20_000 + b'"}}', "data"),
    ],
)
def test_bad_test_bodies_are_400s_naming_the_field(hooked: Gateway, body: bytes, param: str | None) -> None:
    tenant = hooked.issue_key("bodies")
    response = httpx.post(
        f"{hooked.url}/v1/webhooks/test", content=body,
        headers=_auth(tenant.key) | {"content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
