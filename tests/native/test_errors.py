"""The native error envelope: every bad field named in one 422, 401, 404 across keys, no job started."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import Gateway
from tests.gateway.workers import png
from tests.native.conftest import Native


def _envelope(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"data", "message", "errors", "statusCode"}
    assert body["data"] is None and body["statusCode"] == status
    return body


def test_every_bad_field_in_one_422(native: Native) -> None:
    response = native.submit("txt2img", json={"model": "Flux1schnell", "width": 100, "height": "tall", "steps": 11,
                                              "seed": "x"})
    body = _envelope(response, 422)
    assert body["message"] == "Validation failed"
    fields = [entry["field"] for entry in body["errors"]]  # type: ignore[union-attr,index]
    assert fields == ["prompt", "height", "seed"]  # structural errors first; limits need a valid body


def test_model_limits_422(native: Native) -> None:
    response = native.submit("txt2img", json={"model": "Flux1schnell", "prompt": "p", "width": 100, "height": 4096,
                                              "steps": 11, "seed": 1})
    body = _envelope(response, 422)
    assert [e["field"] for e in body["errors"]] == ["width", "height", "steps"]  # type: ignore[union-attr,index]
    assert body["errors"][0]["messages"] == ["The width must be between 256 and 2048."]  # type: ignore[index]


def test_unknown_model_and_wrong_task(native: Native) -> None:
    body = _envelope(native.submit("txt2img", json={"model": "Nope", "prompt": "p", "seed": 1}), 422)
    assert body["errors"] == [{"field": "model", "messages": ["The selected model does not exist."]}]
    body = _envelope(native.submit("txt2img", json={"model": "plain-image", "prompt": "p", "seed": 1}), 422)
    assert body["errors"] == [{"field": "model", "messages": ["The selected model does not support txt2img."]}]


def test_image_and_images_together(native: Native) -> None:
    image = ("a.png", png(2, 2, 1), "image/png")
    response = native.submit("img2img", data={"model": "QwenImageEdit_Plus_NF4", "prompt": "p"},
                             files=[("image", image), ("images[]", image)])
    body = _envelope(response, 422)
    assert [e["field"] for e in body["errors"]] == ["image"]  # type: ignore[union-attr,index]


def test_bad_files_are_named(native: Native) -> None:
    response = native.submit("img-rmbg", data={"model": "Ben2"}, files={"image": ("a.png", b"%PDF-1.7 not an image")})
    body = _envelope(response, 422)
    assert body["errors"][0]["field"] == "image"  # type: ignore[index]
    assert "must be a file of type" in body["errors"][0]["messages"][0]  # type: ignore[index]
    body = _envelope(native.submit("img-rmbg", data={"model": "Ben2"}), 422)
    assert body["errors"] == [{"field": "image", "messages": ["The image field is required."]}]


def test_tts_mode_needs_its_field_and_the_model_must_support_it(native: Native) -> None:
    body = _envelope(native.submit("txt2audio", json={"model": "Kokoro", "text": "hi", "mode": "voice_clone"}), 422)
    assert {e["field"] for e in body["errors"]} == {"mode", "ref_audio"}  # type: ignore[union-attr,index]


def test_unsupported_platform_link(native: Native) -> None:
    body = {"model": "WhisperLargeV3", "video_url": "https://evil.example/x.mp4", "include_ts": True}
    errors = _envelope(native.submit("vid2txt", json=body), 422)["errors"]
    assert errors[0]["field"] == "video_url"  # type: ignore[index]


def test_webhook_must_be_https_and_public(native: Native) -> None:
    body = {"model": "Flux1schnell", "prompt": "p", "seed": 1, "webhook_url": "http://10.0.0.1/hook"}
    errors = _envelope(native.submit("txt2img", json=body), 422)["errors"]
    assert errors[0]["field"] == "webhook_url"  # type: ignore[index]


def test_bad_json_and_401(native_gateway: Gateway) -> None:
    url = f"{native_gateway.url}/api/v1/client/txt2img"
    body = _envelope(httpx.post(url, json={"prompt": "p"}), 401)
    assert body["message"] == "Unauthorized user."
    body = _envelope(httpx.post(url, content=b"{", headers={"Authorization": "Bearer nope"}), 401)


def test_request_status_of_another_key_is_404(native: Native, native_gateway: Gateway) -> None:
    request_id = native.submit("txt2img", json={"model": "Flux1schnell", "prompt": "p", "seed": 1}).json()
    other = Native(native_gateway, native_gateway.issue_key("someone-else").key)
    body = _envelope(other.status(request_id["data"]["request_id"]), 404)
    assert body["message"] == "Request not found."
    _envelope(native.status("no-such-job"), 404)


def test_unknown_task_route_is_a_native_404(native: Native) -> None:
    _envelope(native.http.post(f"{native.base}/txt2nothing", json={}), 404)
