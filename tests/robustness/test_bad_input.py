"""Hostile input on a real gateway: always a 4xx in the OpenAI error shape, never a 5xx."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import ADMIN_KEY, Gateway, api_key, gateway

__all__ = ["api_key", "gateway"]


@pytest.fixture(scope="module")
def admin(gateway: Gateway) -> httpx.Client:
    return httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)


@pytest.fixture(scope="module")
def tenant(gateway: Gateway, api_key: str) -> httpx.Client:
    return httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {api_key}"}, timeout=30)


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.mark.parametrize(
    "path",
    [
        "/admin/routing",
        "/admin/routing/reload",
        "/admin/webhooks/key_x",
        "/admin/webhooks/key_x/resume",
        "/v1/runpod/ep/run",
        "/v1/runpod/ep/runsync",
        "/v1/runpod/ep/status/job_x",
        "/v1/runpod/ep/cancel/job_x",
        "/v1/runpod/ep/health",
    ],
)
@pytest.mark.parametrize("who", ["admin", "anonymous"])
def test_options_on_admin_and_ops_routes_answers_allow(gateway: Gateway, path: str, who: str) -> None:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"} if who == "admin" else {}
    response = httpx.options(f"{gateway.url}{path}", headers=headers)
    assert response.status_code == 204, response.text
    assert "OPTIONS" in response.headers["allow"]


@pytest.mark.parametrize("path", ["/v1/files/file_x", "/v1/results/job_x"])
def test_non_ascii_signature_is_not_found(gateway: Gateway, path: str) -> None:
    response = httpx.get(f"{gateway.url}{path}?exp={int(time.time()) + 60}&sig=%C3%ABo")
    assert _error(response, 404)["code"] in ("file_not_found", "result_link_invalid")


def test_non_ascii_signature_on_the_runpod_callback_is_not_found(gateway: Gateway) -> None:
    response = httpx.post(f"{gateway.url}/v1/webhooks/runpod/nonce_x?sig=%C3%ABo", json={"id": "job_x"})
    assert _error(response, 404)["code"] == "callback_refused"


def test_a_result_signature_is_no_file_link(gateway: Gateway) -> None:
    expires, signature = gateway.services.signer.sign_expiring("result", "job_x", 60)
    assert httpx.get(f"{gateway.url}/v1/results/job_x?exp={expires}&sig={signature}").status_code == 404  # no job
    response = httpx.get(f"{gateway.url}/v1/files/result:job_x?exp={expires}&sig={signature}")
    assert _error(response, 404)["code"] == "file_not_found"  # refused on the signature, not the lookup


JSON_ROUTES = ["/v1/chat/completions", "/v1/embeddings", "/v1/images/generations", "/v1/audio/transcriptions"]


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("depth", [974, 5_000, 100_000])
def test_deeply_nested_json_is_a_400(tenant: httpx.Client, path: str, depth: int) -> None:
    deep = b"[" * depth + b"]" * depth
    for body in (deep, b'{"model": "x", "input": ' + deep + b"}"):
        response = tenant.post(path, content=body, headers={"content-type": "application/json"})
        assert _error(response, 400)["code"] == "invalid_json"


@pytest.mark.parametrize("host", ["a..b", "a" * 64 + ".example.com"])
def test_audio_url_host_that_fails_idna_is_a_400(tenant: httpx.Client, host: str) -> None:
    response = tenant.post("/v1/audio/transcriptions", json={"audioUrl": f"http://{host}/x.wav"})
    assert _error(response, 400)["param"] == "audioUrl"


@pytest.mark.parametrize("host", ["a..b", "a" * 64 + ".example.com"])
def test_webhook_url_host_that_fails_idna_is_a_400(tenant: httpx.Client, host: str) -> None:
    body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], "webhook_url": f"https://{host}/x"}
    assert _error(tenant.post("/v1/chat/completions", json=body), 400)["param"] == "webhook_url"


def test_multipart_text_field_that_is_not_utf8_is_a_400(tenant: httpx.Client) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="language"\r\n\r\n\xff\xfe\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\nRIFF\r\n--b--\r\n"
    )
    response = tenant.post(
        "/v1/audio/transcriptions", content=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    error = _error(response, 400)
    assert error["param"] == "language" and "UTF-8" in error["message"]


def test_malformed_multipart_is_a_400(tenant: httpx.Client) -> None:
    response = tenant.post(
        "/v1/audio/transcriptions",
        content=b"--b\r\nnot a header\r\n\r\n",
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 400, response.text


def test_a_huge_model_name_is_not_echoed_whole(tenant: httpx.Client) -> None:
    name = "m" * 10_000_000
    response = tenant.post("/v1/chat/completions", json={"model": name, "messages": [{"role": "user", "content": "x"}]})
    error = _error(response, 404)
    assert error["code"] == "model_not_found" and len(response.content) < 1000
    assert len(tenant.get(f"/v1/models/{'m' * 7000}").content) < 1000


def test_a_key_longer_than_any_issued_is_refused(gateway: Gateway) -> None:
    response = httpx.get(f"{gateway.url}/v1/models", headers={"authorization": "Bearer " + "k" * 4000})
    assert _error(response, 401)["code"] == "invalid_api_key"
