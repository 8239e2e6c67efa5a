"""OpenRouter's image and audio routes through the official ``openrouter`` SDK, against a real
gateway (the shipped routing.yaml, billing on) and the emulator's contract-following fake
workers: images, transcription from ``input_audio``, speech. Each charges what its /v1 twin
charges; bad inputs are a 400 naming the field."""

from __future__ import annotations

import base64
import io
import struct
import wave
import zlib
from collections.abc import Iterator
from typing import Any, cast

import httpx
import msgspec
import pytest
from openrouter import OpenRouter

from tests.gateway.conftest import ADMIN_KEY, RUNPOD_KEY, Gateway, start_gateway
from tests.gateway.workers import png
from tests.handlers.static_files import static_server
from tests.openrouter import media_workers
from tests.openrouter.media_support import NO_RETRIES, Tenant, error_param, inline, wav_bytes
from tests.support.servers import ServerThread

REFERENCE = png(64, 64, 10)


def first_shade(image: bytes) -> int:
    """The first pixel's red value of a PNG the fake images worker drew (one filter byte, then RGB)."""
    at = image.index(b"IDAT")
    length = struct.unpack(">I", image[at - 4 : at])[0]
    return zlib.decompress(image[at + 4 : at + 4 + length])[1]


def reference_uri() -> str:
    return "data:image/png;base64," + base64.b64encode(REFERENCE).decode()


# Images ------------------------------------------------------------------------------------------


def test_images_answer_openrouters_response_and_charge_the_v1_price(
    media_tenant: Tenant, media_twin: Tenant
) -> None:
    reply = media_tenant.sdk.images.generate(model="Flux1schnell", prompt="a lighthouse", size="512x512", seed=3)
    assert reply.created > 0 and len(reply.data) == 1
    image = base64.b64decode(reply.data[0].b64_json)
    assert image.startswith(b"\x89PNG") and reply.data[0].media_type == "image/png"
    media_twin.openai.images.generate(model="Flux1schnell", prompt="a lighthouse", size="512x512",
                                      response_format="b64_json", extra_body={"seed": 3})
    assert media_tenant.spent() == media_twin.spent() == 0.00136


def test_image_tiers_and_aspect_ratios_become_sides_on_the_models_grid(media_tenant: Tenant) -> None:
    # 1K at 16:9 is 1024 x 576 (a multiple of Flux's 8-pixel step).
    reply = media_tenant.sdk.images.generate(model="Flux1schnell", prompt="wide", resolution="1K",
                                             aspect_ratio="16:9", n=2)
    assert reply.data
    # Priced per 512x512 at 0.00136 for each of the two images asked: the 1024 x 576 sides were used.
    assert media_tenant.spent() == round(2 * 0.00136 * 1024 * 576 / 262144, 6)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "x"}, "model"),
        ({"model": "Flux1schnell", "prompt": ""}, "prompt"),
        ({"model": "Flux1schnell", "prompt": "x", "size": "huge"}, "size"),
        ({"model": "Flux1schnell", "prompt": "x", "size": "4096x4096"}, "size"),  # above the model's 2048
        ({"model": "Flux1schnell", "prompt": "x", "aspect_ratio": "wide"}, "aspect_ratio"),
        ({"model": "Flux1schnell", "prompt": "x", "size": "1024x1024", "aspect_ratio": "16:9"}, "aspect_ratio"),
        ({"model": "Flux1schnell", "prompt": "x", "n": 9}, "n"),
        ({"model": "QwenImageEdit_Plus_NF4", "prompt": "x", "input_references": [{"type": "image_url"}]},
         "input_references.0.image_url"),
        ({"model": "QwenImageEdit_Plus_NF4", "prompt": "x", "input_references": [
            {"type": "image_url", "image_url": {"url": "http://169.254.169.254/a.png"}}]},
         "input_references.0.image_url.url"),
        ({"model": "QwenImageEdit_Plus_NF4", "prompt": "x", "input_references": [
            {"type": "image_url", "image_url": {"url": base64.b64encode(b"no image here").decode()}}]},
         "input_references"),
        ({"model": "Flux1schnell", "prompt": "x", "input_references": [  # a txt2img-only model
            {"type": "image_url", "image_url": {"url": reference_uri()}}]}, "model"),
    ],
)
def test_bad_image_requests_are_400s_naming_the_field(
    media_tenant: Tenant, body: dict[str, Any], param: str
) -> None:
    response = media_tenant.http.post("/api/v1/images", json=body)
    assert response.status_code == 400, response.text
    assert error_param(response) == param
    assert media_tenant.spent() == 0


def test_input_references_edit_like_v1_images_edits_and_cost_the_same(
    media_tenant: Tenant, media_twin: Tenant
) -> None:
    reply = media_tenant.sdk.images.generate(
        model="QwenImageEdit_Plus_NF4", prompt="make it blue", size="512x512", seed=0,
        input_references=cast(Any, [{"type": "image_url", "image_url": {"url": reference_uri()}}]))
    # The fake worker shades its pixel by the seed plus the bytes it fetched: the staged reference.
    assert first_shade(base64.b64decode(reply.data[0].b64_json)) == len(REFERENCE) % 256
    media_twin.openai.images.edit(model="QwenImageEdit_Plus_NF4", prompt="make it blue", size="512x512",
                                  image=("ref.png", REFERENCE), response_format="b64_json")
    assert media_tenant.spent() == media_twin.spent() == 0.0132


def test_an_input_reference_by_url_is_fetched_by_the_gateway(media_tenant: Tenant) -> None:
    with static_server({"/ref.png": (REFERENCE, "image/png")}) as origin:
        reply = media_tenant.sdk.images.generate(
            model="QwenImageEdit_Plus_NF4", prompt="make it blue", size="512x512", seed=0,
            input_references=cast(Any, [{"type": "image_url", "image_url": {"url": f"{origin}/ref.png"}}]))
        missing = media_tenant.http.post("/api/v1/images", json={
            "model": "QwenImageEdit_Plus_NF4", "prompt": "x",
            "input_references": [{"type": "image_url", "image_url": {"url": f"{origin}/gone.png"}}]})
    # The worker was handed the staged copy of the bytes the gateway fetched.
    assert first_shade(base64.b64decode(reply.data[0].b64_json)) == len(REFERENCE) % 256
    assert missing.status_code == 400 and error_param(missing) == "input_references.0.image_url.url"


def test_an_unknown_image_model_is_a_404(media_tenant: Tenant) -> None:
    response = media_tenant.http.post("/api/v1/images", json={"model": "nope", "prompt": "x"})
    assert response.status_code == 404, response.text


# Transcription -----------------------------------------------------------------------------------


def test_input_audio_is_transcribed_like_an_upload_and_charged_alike(
    media_tenant: Tenant, media_twin: Tenant
) -> None:
    audio = wav_bytes()
    reply = media_tenant.sdk.stt.create_transcription(
        model="WhisperLargeV3", input_audio=inline(audio))
    # The fake Whisper names the bytes it was given: the decoded WAV reached it whole.
    assert reply.text == f"bytes{len(audio)} second line"
    twin = media_twin.openai.audio.transcriptions.create(model="WhisperLargeV3", file=("a.wav", audio))
    assert twin.text == reply.text
    assert media_tenant.spent() == media_twin.spent() > 0


def test_verbose_json_segments_validate_against_openrouters_model(media_tenant: Tenant) -> None:
    audio = wav_bytes(0.1)
    reply = media_tenant.sdk.stt.create_transcription(
        model="WhisperLargeV3", response_format="verbose_json",
        input_audio=cast(Any, {"data": "data:audio/wav;base64," + base64.b64encode(audio).decode(), "format": "wav"}))
    assert reply.segments is not None and [s.id for s in reply.segments] == [0, 1]
    assert reply.duration == 62.25


def test_multipart_upload_through_the_sdk(media_tenant: Tenant) -> None:
    audio = wav_bytes(0.1)
    reply = media_tenant.sdk.stt.create_transcription_multipart(
        model="WhisperLargeV3", file={"file_name": "a.wav", "content": audio, "content_type": "audio/wav"})
    assert reply.text == f"bytes{len(audio)} second line"


def test_input_audio_by_url_is_fetched_by_the_worker(media_tenant: Tenant) -> None:
    audio = wav_bytes(0.2)
    with static_server({"/talk.wav": (audio, "audio/wav")}) as origin:
        reply = media_tenant.sdk.stt.create_transcription(
            model="WhisperLargeV3", input_audio=cast(Any, {"url": f"{origin}/talk.wav", "format": "wav"}))
    assert reply.text == f"bytes{len(audio)} second line"
    private = media_tenant.http.post("/api/v1/audio/transcriptions", json={
        "model": "WhisperLargeV3", "input_audio": {"url": "http://10.0.0.1/talk.wav"}})
    assert private.status_code == 400 and error_param(private) == "input_audio.url"


def test_the_v1_route_takes_input_audio_too(media_tenant: Tenant) -> None:
    audio = wav_bytes(0.1)
    response = media_tenant.http.post("/v1/audio/transcriptions", json={
        "model": "WhisperLargeV3", "input_audio": {"data": base64.b64encode(audio).decode(), "format": "wav"}})
    assert response.status_code == 200, response.text
    assert response.json()["text"] == f"bytes{len(audio)} second line"


@pytest.mark.parametrize(
    ("input_audio", "status", "param"),
    [
        ({"data": "not base64!!", "format": "wav"}, 400, "input_audio.data"),
        ({"data": base64.b64encode(b"plain text, no audio here at all").decode(), "format": "wav"}, 400,
         "input_audio.data"),
        ({"data": base64.b64encode(wav_bytes(0.05)).decode(), "format": "mp3"}, 400, "input_audio.format"),
        ({"data": base64.b64encode(wav_bytes(0.05)).decode(), "format": "midi"}, 400, "input_audio.format"),
        ({"data": "", "format": "wav"}, 400, "input_audio.data"),
        ({"format": "wav"}, 400, "input_audio.data"),
        ("UklGRg==", 400, "input_audio"),
    ],
)
def test_bad_input_audio_is_refused_naming_the_field(
    media_tenant: Tenant, input_audio: Any, status: int, param: str
) -> None:
    response = media_tenant.http.post("/api/v1/audio/transcriptions",
                                      json={"model": "WhisperLargeV3", "input_audio": input_audio})
    assert response.status_code == status, response.text
    assert error_param(response) == param
    assert media_tenant.spent() == 0


def test_input_audio_over_the_upload_cap_is_refused_before_decoding(
    media_tenant: Tenant, media_gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = media_gateway.services
    monkeypatch.setattr(services, "settings", msgspec.structs.replace(services.settings, max_audio_bytes=4096))
    audio = wav_bytes(0.5)  # 16 KB
    response = media_tenant.http.post("/api/v1/audio/transcriptions", json={
        "model": "WhisperLargeV3", "input_audio": {"data": base64.b64encode(audio).decode(), "format": "wav"}})
    assert response.status_code == 413, response.text  # as an upload over the cap
    assert error_param(response) == "input_audio.data"


ASYNC_STT_ROUTING = """
upstream: {{base_url: "{upstream}", api_key: "{runpod_key}"}}
surfaces:
  transcribe:
    default_model: WhisperLargeV3
    mode: async
    models:
      WhisperLargeV3: {{endpoint_id: stt-ep, inference_types: [audio2text]}}
"""


@pytest.fixture(scope="module")
def async_stt_gateway(media_emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    upstream = f"{media_emulator.url}/v2"
    gw = start_gateway(upstream, redis_url, f"{redis_prefix}ormedia-async:", admin_key=ADMIN_KEY,
                       routing=ASYNC_STT_ROUTING.format(upstream=upstream, runpod_key=RUNPOD_KEY))
    yield gw
    gw.server.stop()


def test_openrouter_transcription_answers_the_transcript_on_an_async_surface(async_stt_gateway: Gateway) -> None:
    key = async_stt_gateway.issue_key("async-stt").key
    audio = wav_bytes(0.1)
    sdk = OpenRouter(api_key=key, server_url=f"{async_stt_gateway.url}/api/v1", retry_config=NO_RETRIES)
    reply = sdk.stt.create_transcription(model="WhisperLargeV3", input_audio=inline(audio))
    assert reply.text == f"bytes{len(audio)} second line"
    # The /v1 route follows the surface's async mode: a job to poll.
    queued = httpx.post(f"{async_stt_gateway.url}/v1/audio/transcriptions", headers={"Authorization": f"Bearer {key}"},
                        json={"model": "WhisperLargeV3", "input_audio": inline(audio)})
    assert queued.status_code == 202, queued.text


# Speech ------------------------------------------------------------------------------------------


def test_speech_answers_raw_pcm_by_default_and_charges_the_v1_price(
    media_tenant: Tenant, media_twin: Tenant
) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 20
    response = media_tenant.sdk.tts.create_speech(model="Kokoro", input=text, voice="af_bella")
    assert response.headers["content-type"] == "audio/pcm"
    pcm = response.read()
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    assert len(samples) == media_workers.samples_for(text)
    assert max(samples) > 7000  # a real waveform, not silence
    seen = media_workers.SEEN[text]
    assert (seen["format"], seen["voice"], seen["task"]) == ("pcm", "af_bella", "txt2audio")
    media_twin.openai.audio.speech.create(model="Kokoro", input=text, voice="af_bella",  # type: ignore[arg-type]
                                          response_format="pcm")
    assert media_tenant.spent() == media_twin.spent() == round(len(text) * 0.77 / 1e6, 6)


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # wav is outside the SDK's mp3|pcm enum
def test_speech_as_wav_and_turns_read_by_one_voice(media_tenant: Tenant) -> None:
    turns = [{"text": "first line"}, {"text": "second line"}]
    response = media_tenant.sdk.tts.create_speech(model="Kokoro", input=cast(Any, turns), voice="af_sky",
                                                  response_format=cast(Any, "wav"))
    with wave.open(io.BytesIO(response.read())) as clip:
        assert clip.getframerate() == media_workers.SAMPLE_RATE
        assert clip.getnframes() == media_workers.samples_for("first line\nsecond line")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "Kokoro", "input": [{"text": "a", "voice": "af_sky"}, {"text": "b", "voice": "am_adam"}]},
         "input"),
        ({"model": "Kokoro", "input": ""}, "input"),
        ({"model": "Kokoro", "input": "hi", "voice": "nobody"}, "voice"),
        ({"model": "Kokoro", "input": "hi", "response_format": "midi"}, "response_format"),
        ({"model": "Kokoro", "input": "hi", "speed": 9}, "speed"),
    ],
)
def test_bad_speech_requests_are_400s_naming_the_field(
    media_tenant: Tenant, body: dict[str, Any], param: str
) -> None:
    response = media_tenant.http.post("/api/v1/audio/speech", json=body)
    assert response.status_code == 400, response.text
    assert error_param(response) == param
