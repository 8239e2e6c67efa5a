"""Operating billing: the admin ledger route, /readyz's persistence warning."""

from __future__ import annotations

import httpx
from redis import Redis

from tests.billing.conftest import Client
from tests.billing.test_charging import IMAGE, settled, submit, wait
from tests.gateway.conftest import ADMIN_KEY, Gateway


def test_admin_reads_a_keys_ledger(client: Client) -> None:
    request_id = submit(client, "txt2img", json=IMAGE)
    assert wait(client, request_id)["status"] == "done"
    settled(client, request_id)
    url = f"{client.gateway.url}/admin/keys/{client.key_id}/ledger"
    response = httpx.get(url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["key_id"] == client.key_id and body["balance"] == 4.99864 and body["currency"] == "USD"
    hold, settle = body["data"]
    assert hold["kind"] == "hold" and hold["amount"] == 0.00136 and hold["task"] == "txt2img"
    assert hold["quantities"] == {"pixels": 262144.0, "steps": 4.0, "images": 1.0}
    assert settle["kind"] == "settle" and settle["job_id"] == request_id and settle["at"].endswith("Z")


def test_the_ledger_route_is_for_admins_only(client: Client) -> None:
    url = f"{client.gateway.url}/admin/keys/{client.key_id}/ledger"
    assert client.http.get(url).status_code == 403
    missing = httpx.get(f"{client.gateway.url}/admin/keys/key_nope/ledger",
                        headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert missing.status_code == 404


def test_readyz_reports_the_ledgers_persistence(billing_gateway: Gateway) -> None:
    redis = Redis.from_url(billing_gateway.settings.redis_url)
    appendonly = redis.config_get("appendonly")["appendonly"]
    redis.close()
    body = httpx.get(f"{billing_gateway.url}/readyz").json()
    expected = {b"yes": "aof", b"no": "off", "yes": "aof", "no": "off"}[appendonly]
    assert body["billing"] == {"enabled": True, "redis_persistence": expected}
    assert ("append-only" in body.get("warning", "")) == (expected == "off")
