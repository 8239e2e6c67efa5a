"""POST /api/v1/client/{task}/price-calculation over real HTTP against the shipped routing.yaml:
every task answers the seeds' published figures (reference §11) in the shape §1.7 recommends."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.billing.conftest import Client
from tests.gateway.workers import png


def _price(client: Client, task: str, **kwargs: Any) -> float:
    response = client.price(task, **kwargs)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["currency"] == "USD"
    price: float = data["price"]
    return price


def _errors(client: Client, task: str, **kwargs: Any) -> dict[str, list[str]]:
    response = client.price(task, **kwargs)
    assert response.status_code == 422, response.text
    return {entry["field"]: entry["messages"] for entry in response.json()["errors"]}


SDK_IMAGE = {"prompt": "a lighthouse", "width": 512, "height": 512, "seed": -1, "steps": 4}


@pytest.mark.parametrize(
    ("model", "expected"), [("Flux1schnell", 0.00136), ("ZImageTurbo_INT8", 0.00405), ("Flux_2_Klein_4B_BF16", 0.00186)]
)
def test_txt2img_reference_request(client: Client, model: str, expected: float) -> None:
    assert _price(client, "txt2img", json={**SDK_IMAGE, "model": model}) == expected


def test_txt2img_as_the_mcp_server_sends_it_urlencoded_without_a_prompt(client: Client) -> None:
    form = {"model": "Flux1schnell", "width": "1024", "height": "1024", "steps": "4", "guidance": "0", "seed": "-1"}
    assert _price(client, "txt2img", data=form) == 0.00544


def test_img2img_without_the_image(client: Client) -> None:
    body = {"model": "QwenImageEdit_Plus_NF4", "prompt": "p", "width": 512, "height": 512, "steps": 20, "seed": -1}
    assert _price(client, "img2img", json=body) == 0.0132


def test_img2img_with_the_image_prices_the_size_that_runs(client: Client) -> None:
    files = {"image": ("in.png", png(512, 512, 3), "image/png")}
    form = {"model": "Flux_2_Klein_4B_BF16", "prompt": "p", "steps": "4", "seed": "-1", "width": "512",
            "height": "512"}
    assert _price(client, "img2img", data=form, files=files) == 0.00186
    # No size asked: the model's default (1024x1024) is what the worker is sent, and what is priced.
    del form["width"], form["height"]
    assert _price(client, "img2img", data=form, files=files) == 0.00744


@pytest.mark.parametrize(("task", "model", "expected"), [("img-rmbg", "Ben2", 0.0005),
                                                         ("img-upscale", "RealESRGAN_x4plus", 0.001)])
def test_image_tools_by_width_and_height(client: Client, task: str, model: str, expected: float) -> None:
    assert _price(client, task, json={"model": model, "width": 1024, "height": 1024}) == expected


def test_image_tool_by_file_applies_the_minimum(client: Client) -> None:
    files = {"image": ("in.png", png(8, 8, 1), "image/png")}
    assert _price(client, "img-rmbg", data={"model": "Ben2"}, files=files) == 0.0001


def test_ocr_estimates_output_characters_from_the_image_size(client: Client) -> None:
    # 2,000 characters held per 1024x1024 page, at the seeds' 0.00928 per 1,000
    assert _price(client, "img2txt", json={"model": "Nanonets_Ocr_S_F16", "width": 1024, "height": 1024}) == 0.01856
    files = {"image": ("page.png", png(512, 512, 1), "image/png")}
    assert _price(client, "img2txt", data={"model": "Nanonets_Ocr_S_F16"}, files=files) == 0.00464


@pytest.mark.parametrize(("speed", "expected"), [(1.0, 0.00385), (2.0, 0.001925), (0.5, 0.0077)])
def test_txt2audio_per_character_with_speed(client: Client, speed: float, expected: float) -> None:
    body = {"model": "Kokoro", "lang": "en-us", "format": "mp3", "speed": speed, "sample_rate": 24000,
            "count_text": 5000}
    assert _price(client, "txt2audio", json=body) == expected


def test_txt2audio_by_text(client: Client) -> None:
    assert _price(client, "txt2audio", json={"model": "Kokoro", "text": "x" * 1000}) == 0.00077


def test_txt2audio_needs_text_or_count(client: Client) -> None:
    errors = _errors(client, "txt2audio", json={"model": "Kokoro", "speed": 1})
    assert errors == {"text": ["Either text or count_text must be provided."]}
    assert "count_text" in _errors(client, "txt2audio", json={"model": "Kokoro", "count_text": 5001})


def test_txt2music_by_duration_and_steps(client: Client) -> None:
    body = {"model": "ACE-Step-v1.5-turbo", "duration": 60, "inference_steps": 8}
    assert _price(client, "txt2music", json=body) == 0.005
    assert _price(client, "txt2music", json={**body, "inference_steps": 32, "duration": 30}) == 0.01


@pytest.mark.parametrize(
    ("task", "model"),
    [("txt2video", "Ltxv_13B_0_9_8_Distilled_FP8"), ("img2video", "Ltx2_19B_Dist_FP8"),
     ("aud2video", "Ltx2_3_19B_Dist_INT8")],
)
def test_video_two_seconds_at_256(client: Client, task: str, model: str) -> None:
    # The MCP server's fields: no prompt, no seed, no file.
    body = {"model": model, "width": 256, "height": 256, "frames": 48, "fps": 24, "steps": 1}
    assert _price(client, task, json=body) == 0.001737


def test_embeddings_per_thousand_tokens(client: Client) -> None:
    # 3,000 characters are held as 1,000 tokens (3 characters a token) until the worker counts.
    assert _price(client, "txt2embedding", json={"model": "Bge_M3_INT8", "input": "x" * 3000}) == 0.000068
    assert _price(client, "txt2embedding", json={"model": "Bge_M3_INT8", "input": ["x" * 3000] * 10}) == 0.00068


@pytest.mark.parametrize("task", ["vid2txt", "aud2txt", "videofile2txt", "audiofile2txt"])
def test_transcription_five_minutes(client: Client, task: str) -> None:
    body = {"model": "WhisperLargeV3", "include_ts": True, "duration_seconds": 300}
    assert _price(client, task, json=body) == 0.003613


def test_transcription_of_a_link_holds_the_longest_media(client: Client) -> None:
    body = {"model": "WhisperLargeV3", "include_ts": False, "video_url": "https://www.youtube.com/watch?v=abc"}
    assert _price(client, "vid2txt", json=body) == round(0.001863 + 0.021 * 10, 6)  # 600 minutes


def test_transcription_needs_a_source_or_a_duration(client: Client) -> None:
    assert "video_url" in _errors(client, "vid2txt", json={"model": "WhisperLargeV3", "include_ts": True})
    assert "audio" in _errors(client, "audiofile2txt", json={"model": "WhisperLargeV3", "include_ts": True})
    bad_link = {"model": "WhisperLargeV3", "video_url": "https://example.com/v"}
    assert "video_url" in _errors(client, "vid2txt", json=bad_link)


def test_inline_base64_file_is_priced_by_its_size(client: Client) -> None:
    image = base64.b64encode(png(1024, 1024, 2)).decode()
    assert _price(client, "img-upscale", json={"model": "RealESRGAN_x4plus", "image": image}) == 0.001


def test_bad_fields_are_all_named_before_any_price(client: Client) -> None:
    errors = _errors(client, "txt2img", json={"model": "Flux1schnell", "width": -5, "height": 512, "steps": 99})
    assert set(errors) == {"width"}  # the type check stops first, per field
    errors = _errors(client, "txt2img", json={"model": "Flux1schnell", "width": 4096, "height": 512, "steps": 99})
    assert set(errors) == {"width", "steps"}
    assert "model" in _errors(client, "txt2img", json={"model": "nope", "width": 512, "height": 512})
    assert "model" in _errors(client, "txt2img", json={"model": "Kokoro", "width": 512, "height": 512})


def test_price_calls_need_a_key(client: Client) -> None:
    response = client.http.post(f"{client.base}/txt2img/price-calculation", json=SDK_IMAGE,
                                headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_balance_starts_with_the_signup_bonus(client: Client) -> None:
    assert client.balance() == 5.0
