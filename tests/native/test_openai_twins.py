"""The native tasks' OpenAI twins through the official openai SDK: /v1/images/edits runs
img2img and /v1/audio/speech runs txt2audio, over the same task modules."""

from __future__ import annotations

import io

import openai
import pytest

from tests.gateway.conftest import Gateway
from tests.gateway.workers import png


@pytest.fixture
def sdk(native_gateway: Gateway, native_key: str) -> openai.OpenAI:
    return native_gateway.client(native_key)


def test_images_edit_through_the_sdk(sdk: openai.OpenAI) -> None:
    image = io.BytesIO(png(4, 4, 3))
    image.name = "in.png"
    result = sdk.images.edit(model="QwenImageEdit_Plus_NF4", image=image, prompt="make it blue",
                             response_format="b64_json")
    assert result.data and result.data[0].b64_json


def test_images_edit_needs_an_img2img_model(sdk: openai.OpenAI) -> None:
    image = io.BytesIO(png(4, 4, 3))
    image.name = "in.png"
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.edit(model="Flux1schnell", image=image, prompt="p")
    assert caught.value.body["param"] == "model"  # type: ignore[index]


def test_speech_through_the_sdk(sdk: openai.OpenAI) -> None:
    audio = sdk.audio.speech.create(model="Kokoro", voice="af_sky", input="Hello there", response_format="wav")
    assert audio.content == b"RIFFaudio:Hello there"
    assert audio.response.headers["content-type"] == "audio/wav"


def test_speech_unknown_voice_names_the_field(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.audio.speech.create(model="Kokoro", voice="nobody", input="Hi")
    assert caught.value.body["param"] == "voice"  # type: ignore[index]


def test_generations_refuse_a_model_without_txt2img(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(model="Ben2", prompt="p")
    assert caught.value.body["param"] == "model"  # type: ignore[index]


def test_generations_enforce_the_models_limits(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(model="Flux1schnell", prompt="p", size="4096x4096")
    assert caught.value.body["param"] == "size"  # type: ignore[index]
