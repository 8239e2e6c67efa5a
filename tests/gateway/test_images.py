"""Image generation: both response formats, signed URLs, the field mapping, timeouts."""

from __future__ import annotations

import base64
import time

import httpx
import openai
import pytest

from tests.gateway.conftest import Gateway

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_url_format_serves_bytes_without_a_key(client: openai.OpenAI) -> None:
    result = client.images.generate(model="tiny-image", prompt="a red fox", n=2, size="128x64")
    assert result.data is not None and len(result.data) == 2
    for item in result.data:
        assert item.url is not None and "/v1/files/" in item.url
        fetched = httpx.get(item.url)
        assert fetched.status_code == 200
        assert fetched.headers["content-type"] == "image/png"
        assert fetched.content.startswith(PNG_MAGIC)


def test_b64_json_format(client: openai.OpenAI) -> None:
    result = client.images.generate(model="tiny-image", prompt="a fox", response_format="b64_json")
    assert result.data is not None
    raw = base64.b64decode(result.data[0].b64_json or "")
    assert raw.startswith(PNG_MAGIC)


def test_only_mapped_fields_reach_the_handler(gateway: Gateway, api_key: str) -> None:
    # The stock-style worker rejects unknown keys, so `style`/`quality`/`user` must not reach it.
    response = httpx.post(
        f"{gateway.url}/v1/images/generations",
        json={
            "prompt": "mapped",
            "n": 1,
            "size": "64x64",
            "steps": 3,
            "seed": 11,
            "negative_prompt": "blur",
            "guidance_scale": 2.5,
            "style": "vivid",
            "quality": "hd",
            "user": "u1",
            "output_format": "png",
            "response_format": "b64_json",
        },
        headers={"authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 200, response.text


def test_tampered_or_expired_signature_is_refused(client: openai.OpenAI) -> None:
    result = client.images.generate(model="tiny-image", prompt="fox")
    assert result.data is not None and result.data[0].url
    url = result.data[0].url
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert httpx.get(forged).status_code == 404
    path, _, query = url.partition("?")
    expired = f"{path}?exp={int(time.time()) - 10}&{query.split('&')[1]}"
    response = httpx.get(expired)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_worker_urls_pass_through(client: openai.OpenAI) -> None:
    result = client.images.generate(model="tiny-image", prompt="worker urls")
    assert result.data is not None and result.data[0].url == "https://cdn.example.invalid/a.png"


def test_completed_without_output_is_a_clear_502(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.images.generate(model="tiny-image", prompt="no output")
    assert caught.value.status_code == 502


def test_bad_size_names_the_field(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="tiny-image", prompt="fox", size="huge")  # type: ignore[arg-type]
    assert caught.value.param == "size"


def test_sync_timeout_is_504_naming_the_job(gateway: Gateway, api_key: str) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/images/generations",
        json={"prompt": "slow 3"},
        headers={"authorization": f"Bearer {api_key}"},
        timeout=30,
    )
    assert response.status_code == 504
    job_id = response.headers["x-dryapi-job-id"]
    assert job_id in response.json()["error"]["message"]
    assert response.headers["x-should-retry"] == "false"
