"""Prompt boosters and sample prompts: synchronous, in the seeds' shapes, through a chat worker."""

from __future__ import annotations

from tests.gateway.workers import png
from tests.native.conftest import Native


def test_image_booster_answers_prompt_and_negative(native: Native) -> None:
    response = native.http.post(f"{native.base}/prompt/image", json={"prompt": "a cat in space",
                                                                       "negative_prompt": None})
    assert response.status_code == 200, response.text
    assert response.json() == {"prompt": "enhanced a cat in space", "negative_prompt": "blurry"}


def test_a_plain_text_answer_is_the_prompt(native: Native) -> None:
    response = native.http.post(f"{native.base}/prompt/video", data={"prompt": "plain waves", "negative_prompt": ""})
    assert response.json() == {"prompt": "plain plain waves", "negative_prompt": ""}


def test_speech_booster_has_no_negative_prompt(native: Native) -> None:
    response = native.http.post(f"{native.base}/prompt/speech", json={"prompt": "hello 3 dogs", "lang_code": "en"})
    assert response.json() == {"prompt": "enhanced hello 3 dogs"}


def test_image2image_needs_its_image_and_sends_it_to_a_model_that_sees(native: Native) -> None:
    response = native.http.post(f"{native.base}/prompt/image2image", data={"prompt": "bluer"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "image", "messages": ["The image field is required."]}]
    image = png(3, 3, 1)
    response = native.http.post(f"{native.base}/prompt/image2image", data={"prompt": "bluer", "negative_prompt": ""},
                                files={"image": ("a.png", image, "image/png")})
    assert response.status_code == 200, response.text
    assert response.json() == {"prompt": f"page of {len(image)} bytes", "negative_prompt": ""}  # the OCR model saw it


def test_samples(native: Native) -> None:
    response = native.http.get(f"{native.base}/prompts/samples", params={"type": "text2image", "topic": "cyberpunk"})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["data"]["type"] == "text2image"
    assert body["data"]["prompt"].startswith("enhanced ")
    bad = native.http.get(f"{native.base}/prompts/samples", params={"type": "poems"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "type"
