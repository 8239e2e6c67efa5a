"""Transcriptions: SDK uploads in every response format, staged large uploads, audioUrl."""

from __future__ import annotations

import io

import httpx
import openai
import pytest
from litestar import get
from litestar.response import Response

from tests.gateway.conftest import Gateway
from tests.support.servers import serve, stub_app

SMALL = b"RIFF" + bytes(600)  # inline as audio_base64 (gateway inline limit is 2048 in tests)
LARGE = b"RIFF" + bytes(50_000)  # staged in Redis and handed over as a signed URL


def _file(data: bytes) -> tuple[str, io.BytesIO, str]:
    return ("clip.wav", io.BytesIO(data), "audio/wav")


def test_json_format(client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(model="whisper-1", file=_file(SMALL), language="de", prompt="ctx")
    assert result.text == f"bytes{len(SMALL)} base64 de ctx"


def test_text_srt_vtt(client: openai.OpenAI) -> None:
    text = client.audio.transcriptions.create(model="tiny-whisper", file=_file(SMALL), response_format="text")
    assert text == f"bytes{len(SMALL)} base64 auto"
    srt = client.audio.transcriptions.create(model="tiny-whisper", file=_file(SMALL), response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> 00:00:01,500\n")
    assert "2\n00:00:01,500 --> 00:00:03,250\nauto" in srt
    vtt = client.audio.transcriptions.create(model="tiny-whisper", file=_file(SMALL), response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\n")


def test_verbose_json_with_words(client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(
        model="tiny-whisper",
        file=_file(SMALL),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.language == "en"
    assert result.duration == 3.25
    assert result.segments is not None and [s.id for s in result.segments] == [0, 1]
    assert result.words is not None and result.words[0].word == f"bytes{len(SMALL)}"


def test_large_upload_is_staged_and_fetched_by_the_worker(client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(model="tiny-whisper", file=_file(LARGE))
    assert result.text.startswith(f"bytes{len(LARGE)} url")


def test_upload_over_the_limit_is_413(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(model="tiny-whisper", file=_file(bytes(300_000)))
    assert caught.value.status_code == 413
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]


def test_missing_file_names_the_field(gateway: Gateway, api_key: str) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/audio/transcriptions",
        data={"model": "tiny-whisper"},
        files={"other": ("x.wav", b"abc", "audio/wav")},
        headers={"authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file"


@get("/clip.wav")
async def _clip() -> Response[bytes]:
    return Response(content=SMALL, media_type="audio/wav")


def test_audio_url_json_body(gateway: Gateway, api_key: str) -> None:
    with serve(stub_app(_clip)) as media:
        response = httpx.post(
            f"{gateway.url}/v1/audio/transcriptions",
            json={"audioUrl": f"{media.url}/clip.wav", "response_format": "verbose_json"},
            headers={"authorization": f"Bearer {api_key}"},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    assert response.json()["text"].startswith(f"bytes{len(SMALL)} url")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/a.wav",
        "http://192.168.1.1/a.wav",
        "http://localhost:9/a.wav",
        "http://[::1]/a.wav",
        "file:///etc/passwd",
        "ftp://example.com/a.wav",
    ],
)
def test_audio_url_refuses_private_targets(gateway: Gateway, api_key: str, url: str) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/audio/transcriptions",
        json={"audioUrl": url},
        headers={"authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "audioUrl"
