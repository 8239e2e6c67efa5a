"""Every native task through real HTTP, a real Redis and the emulator: submit, poll
request-status to done, download the file at result_url (or read the text result)."""

from __future__ import annotations

import base64
import io
import json
import wave
from typing import Any

import httpx
import pytest

from tests.gateway.workers import png
from tests.native.conftest import Native

PNG = png(4, 3, 10)


def _wav(seconds: float = 4.0) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x01" * int(8000 * seconds))
    return buffer.getvalue()


MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2mp41" + b"\x00" * 64


def _download(url: str) -> httpx.Response:
    response = httpx.get(url, timeout=10)  # signed: no key needed
    assert response.status_code == 200, response.text
    return response


def test_txt2img_json_to_done_and_the_file(native: Native) -> None:
    data = native.run("txt2img", json={"prompt": "a cat", "model": "Flux1schnell", "width": 512, "height": 512,
                                       "seed": -1, "steps": 4})
    assert data["status"] == "done" and data["progress"] == 100.0 and data["result"] is None
    image = _download(data["result_url"])
    assert image.headers["content-type"] == "image/png" and image.content.startswith(b"\x89PNG")


def test_txt2img_form_encoded_with_string_scalars(native: Native) -> None:
    form = {"prompt": "a dog", "model": "Flux1schnell", "width": "512", "height": "512", "seed": "7", "steps": "2",
            "negative_prompt": ""}
    data = native.run("txt2img", data=form)
    assert data["status"] == "done"


@pytest.mark.parametrize("field", ["image", "images[]"])
def test_img2img_multipart_single_or_several(native: Native, field: str) -> None:
    files = [(field, ("in.png", PNG, "image/png"))] * (2 if field == "images[]" else 1)
    data = native.run("img2img", data={"prompt": "blue", "model": "QwenImageEdit_Plus_NF4", "steps": "4",
                                       "seed": "1"}, files=files)
    assert data["status"] == "done"
    assert _download(data["result_url"]).content.startswith(b"\x89PNG")


@pytest.mark.parametrize(("task", "model"), [("img-rmbg", "Ben2"), ("img-upscale", "RealESRGAN_x4")])
def test_image_only_tasks(native: Native, task: str, model: str) -> None:
    data = native.run(task, data={"model": model}, files={"image": ("x.png", PNG, "application/octet-stream")})
    assert data["status"] == "done"
    assert _download(data["result_url"]).content.startswith(b"\x89PNG")


def test_img2txt_ocr_result_is_text(native: Native) -> None:
    data = native.run("img2txt", data={"model": "Nanonets_Ocr_S_F16", "language": "en"},
                      files={"image": ("page.png", PNG, "image/png")})
    assert data["status"] == "done" and data["result_url"] is None
    assert data["result"] == f"page of {len(PNG)} bytes"


def test_txt2audio_to_a_wav_file(native: Native) -> None:
    data = native.run("txt2audio", json={"model": "Kokoro", "text": "Hello there", "voice": "af_sky", "lang": "en-us"})
    assert data["status"] == "done"
    audio = _download(data["result_url"])
    assert audio.headers["content-type"] == "audio/wav" and audio.content == b"RIFFaudio:Hello there"


def test_txt2audio_voice_clone_uploads_the_reference(native: Native) -> None:
    data = native.run("txt2audio", data={"model": "Chatterbox", "text": "Hi", "mode": "voice_clone"},
                      files={"ref_audio": ("me.wav", _wav(), "audio/wav")})
    assert data["status"] == "done"


def test_txt2music_with_reference_audio(native: Native) -> None:
    data = native.run("txt2music", data={"model": "ACE-Step-v1.5-turbo", "caption": "lofi", "duration": "30"},
                      files={"reference_audio": ("ref.wav", _wav(), "audio/wav")})
    assert data["status"] == "done"
    assert _download(data["result_url"]).content.startswith(b"music:lofi:")


@pytest.mark.parametrize(
    ("task", "files"),
    [
        ("txt2video", None),
        ("img2video", {"first_frame_image": ("f.png", PNG, "image/png"), "last_frame_image": ("l.png", PNG)}),
        ("aud2video", {"audio": ("a.wav", _wav(), "audio/wav")}),
    ],
)
def test_video_tasks(native: Native, task: str, files: dict[str, Any] | None) -> None:
    form = {"model": "Ltx2_3_19B_Dist_INT8", "prompt": "waves", "frames": "48", "fps": "24", "seed": "-1"}
    data = native.run(task, data=form, files=files) if files else native.run(task, json=form)
    assert data["status"] == "done"
    video = _download(data["result_url"])
    assert video.headers["content-type"] == "video/mp4" and video.content.startswith(f"mp4:{task}".encode())


@pytest.mark.parametrize(
    ("task", "body", "expected"),
    [
        ("vid2txt", {"video_url": "https://www.youtube.com/watch?v=x", "include_ts": False},
         "link:www.youtube.com second line"),
        ("aud2txt", {"audio_url": "https://x.com/i/spaces/1YqK", "include_ts": True},
         "[00:00:00.000 --> 00:00:01.500] link:x.com\n[00:00:01.500 --> 00:01:02.250] second line"),
    ],
)
def test_link_transcription(native: Native, task: str, body: dict[str, Any], expected: str) -> None:
    data = native.run(task, json={"model": "WhisperLargeV3", **body})
    assert data["status"] == "done" and data["result"] == expected


@pytest.mark.parametrize(
    ("task", "field", "payload"), [("audiofile2txt", "audio", _wav()), ("videofile2txt", "video", MP4)]
)
def test_file_transcription(native: Native, task: str, field: str, payload: bytes) -> None:
    data = native.run(task, data={"model": "WhisperLargeV3", "include_ts": "0"}, files={field: ("f", payload)})
    assert data["status"] == "done" and data["result"] == f"bytes{len(payload)} second line"


def test_file_inline_as_base64_in_json(native: Native) -> None:
    body = {"model": "WhisperLargeV3", "include_ts": "false", "audio": base64.b64encode(_wav()).decode()}
    data = native.run("audiofile2txt", json=body)
    assert data["status"] == "done"


def test_txt2embedding_result_is_a_json_string(native: Native) -> None:
    data = native.run("txt2embedding", json={"model": "Bge_M3_INT8", "input": ["one", "two"]})
    assert data["status"] == "done"
    vectors = json.loads(data["result"])
    assert len(vectors) == 2 and len(vectors[0]) == 8


def test_worker_failure_is_an_error_status(native: Native) -> None:
    data = native.run("txt2img", json={"prompt": "fail", "model": "Flux1schnell", "seed": 1})
    assert data["status"] == "error" and "cannot draw that" in data["error"]
    assert data["result_url"] is None


def test_progress_and_preview_while_running(native: Native) -> None:
    response = native.submit("txt2audio", json={"model": "Kokoro", "text": "Hi"})
    request_id = response.json()["data"]["request_id"]
    data = native.wait(request_id)
    assert data["status"] == "done" and isinstance(data["progress"], float)
