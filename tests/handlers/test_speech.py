"""The speech handler on a tiny random Kokoro (CPU, no hub), its encoders and its input checks.

Model tests go through ``handler(job)`` and the real loading code on the directory
``tests/handlers/tiny_speech.py`` lays out like ``hexgrad/Kokoro-82M``; every output is
decoded back with PyAV. Input checks that fail before any model loads run without one.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import struct
import threading
import time
import wave
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from handlers.common.errors import decode_error
from handlers.common.progress import EMULATOR_PROGRESS_KEY
from handlers.speech import engine, output, text
from handlers.speech.handler import handler
from handlers.speech.schema import FORMATS
from tests.contracts.shape import assert_same_shape, load_contract
from tests.handlers.cancelling import cancel_after_first_progress
from tests.handlers.tiny_speech import TINY_KOKORO_VOICES, build_tiny_kokoro
from tests.support.servers import ServerThread

_ENV = (  # a developer's or CI's own settings must not leak into these tests
    "SPEECH_ENGINE",
    "SPEECH_DEVICE",
    "SPEECH_G2P",
    "SPEECH_DEFAULT_VOICE",
    "SPEECH_MAX_TEXT",
    "SPEECH_MAX_INLINE_BYTES",
    "SPEECH_DEFAULT_FORMAT",
    "SPEECH_CHUNK_CHARS",
    "MEDIA_FETCH_ALLOWLIST",
    "BUCKET_ENDPOINT_URL",
)
SHORT = "Hello there."
LONG = (
    "Hello there. This sentence is longer than the first one, with a clause. "
    "A third one follows! And a fourth one ends it, asking a question?"
)


@pytest.fixture(scope="session")
def tiny_kokoro(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_kokoro(tmp_path_factory.mktemp("models") / "tiny-Kokoro-82M")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SPEECH_MODEL", "hexgrad/Kokoro-82M")  # never loaded by the input-check tests
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def kokoro(tiny_kokoro: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPEECH_MODEL", str(tiny_kokoro))
    return tiny_kokoro


def run(payload: Any, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    job = {"id": "job-1", "input": payload, EMULATOR_PROGRESS_KEY: progress or (lambda update: None)}
    return asyncio.run(handler(job))


def error_of(out: dict[str, Any]) -> dict[str, Any]:
    error = decode_error(out)
    assert error is not None, f"expected an error, got keys {sorted(out)}"
    return error


def decode_audio(blob: bytes) -> tuple[str, int, int, float]:
    """(codec, sample rate, channels, seconds) of an encoded file, decoded to the end."""
    with av.open(io.BytesIO(blob), mode="r") as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return stream.codec_context.name, stream.rate, stream.channels, samples / stream.rate


def file_bytes(out: dict[str, Any]) -> bytes:
    (entry,) = out["files"]
    return base64.b64decode(entry["data"])


def tone_wav(seconds: float, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        count = int(seconds * rate)
        wav.writeframes(struct.pack(f"<{count}h", *(int(6000 * math.sin(i / 8)) for i in range(count))))
    return buffer.getvalue()


# --- text splitting ------------------------------------------------------------------------


def test_sentences_split_at_ends_and_line_breaks() -> None:
    assert text.sentences(
        "Hi there.  How are you?\n\nFine!  \u201cYes.\u201d 3.5 is\n\u4f60\u597d\u3002\u8c22\u8c22\uff01"
    ) == [
        "Hi there.",
        "How are you?",
        "Fine!",
        "\u201cYes.\u201d",
        "3.5 is",
        "\u4f60\u597d\u3002",
        "\u8c22\u8c22\uff01",
    ]
    assert text.sentences("   \n ") == []


def test_chunks_pack_sentences_and_split_long_ones() -> None:
    fits = lambda s: len(s) <= 30  # noqa: E731
    pieces = text.chunks("One two. Three four. " + "word " * 20 + "x" * 70, fits)
    assert all(fits(piece) for piece in pieces)
    assert pieces[0] == "One two. Three four."  # whole sentences share a call
    assert "".join(pieces).replace(" ", "") == ("One two. Three four. " + "word " * 20 + "x" * 70).replace(" ", "")


# --- encoders ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "rate", "codec"),
    [
        ("wav", 24000, "pcm_s16le"),
        ("mp3", 24000, "mp3float"),
        ("mp3", 44100, "mp3float"),
        ("flac", 16000, "flac"),
        ("opus", 48000, "opus"),
        ("ogg", 48000, "opus"),
        ("aac", 24000, "aac"),
    ],
)
def test_each_format_decodes_at_the_rate_asked(fmt: str, rate: int, codec: str) -> None:
    samples = (0.3 * np.sin(2 * np.pi * 220 * np.arange(36_000) / 24_000)).astype(np.float32)  # 1.5 s
    name, decoded_rate, channels, seconds = decode_audio(output.encode(samples, 24_000, fmt, rate))
    assert (name, decoded_rate, channels) == (codec, rate, 1)
    # ADTS cannot say how many priming and padding samples the AAC encoder added (~80 ms).
    assert seconds == pytest.approx(1.5, abs=0.1 if fmt == "aac" else 0.03)


def test_pcm_is_raw_16_bit_mono_at_the_rate_asked() -> None:
    samples = np.full(24_000, 0.5, dtype=np.float32)
    blob = output.encode(samples, 24_000, "pcm", 16_000)
    values = np.frombuffer(blob, dtype="<i2")
    assert len(values) == pytest.approx(16_000, abs=32)
    assert abs(int(values[len(values) // 2]) - 16384) < 200
    assert FORMATS["pcm"].content_type == "audio/pcm"


# --- input checks (no model) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"text": ""}, "text"),
        ({"text": "  \n "}, "text"),
        ({"voice": "af_sky"}, "text"),
        ({"text": "hi", "speed": 2.5}, "speed"),
        ({"text": "hi", "speed": 0.2}, "speed"),
        ({"text": "hi", "format": "wma"}, "format"),
        ({"text": "hi", "format": "opus", "sample_rate": 24000}, "sample_rate"),
        ({"text": "hi", "format": "mp3", "sample_rate": 23000}, "sample_rate"),
        ({"text": "hi", "sample_rate": 96000}, "sample_rate"),
        ({"text": "hi", "mode": "karaoke"}, "mode"),
        ({"text": "hi", "mode": "voice_clone"}, "ref_audio"),
        ({"text": "hi", "mode": "voice_design"}, "instruct"),
        ({"text": "hi", "mode": "voice_design", "instruct": "a calm, low voice"}, "mode"),
        ({"text": "hi", "mode": "voice_clone", "ref_audio": "https://example.com/a.wav"}, "mode"),
        ({"text": "hi", "colour": "blue"}, "colour"),
        ({"text": "hi", "task": "txt2music"}, "task"),
    ],
)
def test_bad_input_names_the_field(payload: dict[str, Any], param: str) -> None:
    error = error_of(run(payload))
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_text_over_the_limit_names_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECH_MAX_TEXT", "10")
    assert error_of(run({"text": "eleven char"}))["param"] == "text"


def test_mode_follows_the_model_family(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECH_MODEL", "ResembleAI/chatterbox")
    assert error_of(run({"text": "hi", "voice": "af_sky"}))["param"] == "mode"  # clone-only family
    # A Qwen3-TTS checkpoint does one mode: the worker's modes are those of the checkpoints it names.
    assert engine.family_of("Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign").modes == {"voice_design"}
    monkeypatch.setenv("SPEECH_MODEL", "some/unknown-model")
    assert error_of(run({"text": "hi"}))["code"] == "bad_configuration"


# --- the voice_clone reference clip (fetched from a local server) --------------------------


class _ClipServer(BaseHTTPRequestHandler):
    bodies: dict[str, tuple[str, bytes]] = {
        "/five.wav": ("audio/wav", tone_wav(5.0)),
        "/one.wav": ("audio/wav", tone_wav(1.0)),
        "/twelve.wav": ("audio/wav", tone_wav(12.0)),
        "/page": ("text/html", b"<html>not audio</html>"),
        "/noise.wav": ("audio/wav", bytes(range(256)) * 64),
    }

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        content_type, body = self.bodies.get(self.path, ("text/plain", b"missing"))
        self.send_response(200 if self.path in self.bodies else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def clip_origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ClipServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def cloning(clip_origin: str, monkeypatch: pytest.MonkeyPatch) -> str:
    # A cloning family: the clip is checked before the engine loads (which fails here: its
    # package cannot be installed beside torch 2.13), so every check below is the real one.
    monkeypatch.setenv("SPEECH_MODEL", "ResembleAI/chatterbox")
    monkeypatch.setenv("MEDIA_FETCH_ALLOWLIST", clip_origin)
    return clip_origin


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/one.wav", "audio_too_short"),
        ("/twelve.wav", "audio_too_long"),
        ("/page", "unsupported_format"),
        ("/noise.wav", "invalid_audio"),
        ("/missing.wav", "media_fetch_failed"),
    ],
)
def test_a_bad_reference_clip_names_ref_audio(cloning: str, path: str, code: str) -> None:
    error = error_of(run({"text": "hi", "mode": "voice_clone", "ref_audio": cloning + path}))
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "ref_audio", code)


def test_a_good_reference_clip_passes_to_the_engine(cloning: str) -> None:
    error = error_of(run({"text": "hi", "mode": "voice_clone", "ref_audio": f"{cloning}/five.wav"}))
    assert (error["type"], error["code"]) == ("server_error", "engine_unavailable")


def test_reference_urls_obey_the_address_rule(clip_origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECH_MODEL", "ResembleAI/chatterbox")
    error = error_of(run({"text": "hi", "mode": "voice_clone", "ref_audio": f"{clip_origin}/five.wav"}))
    assert (error["param"], error["code"]) == ("ref_audio", "url_not_allowed")  # loopback, not allowlisted


# --- synthesis on the tiny Kokoro ----------------------------------------------------------


@pytest.mark.slow
def test_duration_grows_with_text_and_shrinks_with_speed(kokoro: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECH_CHUNK_CHARS", "60")  # LONG takes three model calls
    updates: list[dict[str, Any]] = []
    short = run({"text": SHORT, "format": "wav"})
    long = run({"text": LONG, "format": "wav"}, updates.append)
    fast = run({"text": SHORT, "format": "wav", "speed": 2.0})
    for out in (short, long, fast):
        codec, rate, channels, seconds = decode_audio(file_bytes(out))
        assert (codec, rate, channels) == ("pcm_s16le", out["sample_rate"], 1) == ("pcm_s16le", 24000, 1)
        assert seconds == pytest.approx(out["duration_s"], abs=0.01)
    assert long["duration_s"] > 4 * short["duration_s"]  # ~10x the phonemes
    assert long["duration_s"] == pytest.approx(short["duration_s"] * len(LONG) / len(SHORT), rel=0.5)
    # About halved: Kokoro rounds each phoneme's duration to whole frames (at least one).
    assert 0.25 * short["duration_s"] < fast["duration_s"] < 0.75 * short["duration_s"]
    assert short["voice"] == "af_sky" and short["files"][0]["content_type"] == "audio/wav"
    progress = [update["progress"] for update in updates]
    assert len(progress) >= 2 and progress == sorted(progress)  # one report per chunk


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "rate"), [("mp3", None), ("opus", None), ("flac", 16000), ("pcm", None)])
def test_handler_output_formats(kokoro: Path, fmt: str, rate: int | None) -> None:
    out = run({"text": "Hi.", "format": fmt} | ({"sample_rate": rate} if rate else {}))
    assert out["sample_rate"] == (rate or (48000 if fmt == "opus" else 24000)) and out["format"] == fmt
    assert out["files"][0]["content_type"] == FORMATS[fmt].content_type
    blob = file_bytes(out)
    if fmt == "pcm":
        assert len(blob) / 2 / out["sample_rate"] == pytest.approx(out["duration_s"], abs=0.01)
        return
    _, decoded_rate, channels, seconds = decode_audio(blob)
    assert (decoded_rate, channels) == (out["sample_rate"], 1)
    assert seconds == pytest.approx(out["duration_s"], abs=0.08)


@pytest.mark.slow
def test_voices_and_languages_are_checked_against_the_model(kokoro: Path) -> None:
    unknown = error_of(run({"text": "hi", "voice": "af_nobody"}))
    assert (unknown["param"], unknown["code"]) == ("voice", "unknown_voice")
    assert all(voice in unknown["message"] for voice in TINY_KOKORO_VOICES)
    assert error_of(run({"text": "hi", "lang": "klingon"}))["param"] == "lang"
    spanish = run({"text": "Hola.", "lang": "es", "format": "wav"})
    assert spanish["voice"] == "ef_dora"  # the language's own voice when none is named
    british = run({"text": "Hello.", "voice": "bf_emma", "format": "wav", "instruct": "whisper it"})
    assert british["voice"] == "bf_emma" and british["duration_s"] > 0
    assert british["ignored"] == ["instruct"] and "ignored" not in spanish  # custom_voice reads no instruct


@pytest.mark.slow
def test_nothing_of_the_text_reaches_the_logs(kokoro: Path, capfd: pytest.CaptureFixture[str]) -> None:
    run({"text": "Zebra quartz.", "format": "wav"})
    captured = capfd.readouterr()
    logged = captured.out + captured.err
    assert "Zebra" not in logged and "phonemes" not in logged


@pytest.mark.slow
async def test_a_cancelled_job_stops_between_chunks(kokoro: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECH_CHUNK_CHARS", "20")  # the first call is short, so progress comes soon
    updates = await cancel_after_first_progress(handler, {"text": LONG, "format": "wav"})
    assert len(updates) == 1


@pytest.mark.slow
def test_contract_examples(kokoro: Path) -> None:
    for case in load_contract("speech")["cases"]:
        out = run(case["input"])
        if "error" in case:
            assert error_of(out) | {"message": None} == case["error"] | {"message": None}, case["name"]
        else:
            assert_same_shape(out, case["output"])


@pytest.mark.slow
def test_runs_behind_the_emulator(tiny_kokoro: Path) -> None:
    endpoint = EmulatorEndpoint(handler="handlers.speech.handler:handler", env={"SPEECH_MODEL": str(tiny_kokoro)})
    server = ServerThread(create_emulator_app({"speech": endpoint})).start()
    try:
        job = {"input": {"task": "txt2audio", "model": "hexgrad/Kokoro-82M", "text": SHORT, "format": "mp3"}}
        response = httpx.post(f"{server.url}/v2/speech/runsync?wait=60000", json=job, timeout=90)
        body = response.json()
        assert body["status"] == "COMPLETED", body.get("error")
        out = body["output"]
        assert out["model"] == "hexgrad/Kokoro-82M" and out["files"][0]["content_type"] == "audio/mpeg"
        codec, rate, channels, seconds = decode_audio(file_bytes(out))
        assert (codec, rate, channels) == ("mp3float", 24000, 1)
        assert seconds == pytest.approx(out["duration_s"], abs=0.08)
        failed = httpx.post(f"{server.url}/v2/speech/runsync?wait=60000", json={"input": {"text": ""}}, timeout=90)
        assert failed.json()["status"] == "FAILED"
        assert decode_error(failed.json())["param"] == "text"  # type: ignore[index]
    finally:
        server.stop()


_GATEWAY_ROUTING = """
upstream: {{base_url: "{upstream}", api_key: ""}}
surfaces:
  speech:
    default_model: kokoro
    sync_timeout_s: 120
    models:
      kokoro:
        endpoint_id: tts
        upstream_model: hexgrad/Kokoro-82M
        base_url: "{upstream}"
        inference_types: [txt2audio]
        info:
          limits: {{min_speed: 0.5, max_speed: 2}}
          features: {{supports_custom_voice: true, supports_voice_clone: false, supports_voice_design: false}}
          defaults: {{voice: af_sky}}
"""


@pytest.mark.slow
def test_openai_speech_through_the_gateway(tiny_kokoro: Path, redis_url: str, redis_prefix: str) -> None:
    """openai SDK -> gateway /v1/audio/speech -> emulator -> this worker, bytes decoded; then the
    native task API (txt2audio) on the same stack."""
    import openai

    from tests.gateway.conftest import start_gateway, unique

    endpoint = EmulatorEndpoint(handler="handlers.speech.handler:handler", env={"SPEECH_MODEL": str(tiny_kokoro)})
    emulator = ServerThread(create_emulator_app({"tts": endpoint})).start()
    upstream = f"{emulator.url}/v2"
    gateway = start_gateway(
        upstream, redis_url, f"{redis_prefix}speech-{unique()}:", routing=_GATEWAY_ROUTING.format(upstream=upstream)
    )
    try:
        client = gateway.client("open-mode", timeout=120)
        audio = client.audio.speech.create(model="kokoro", voice="af_bella", input=SHORT, response_format="flac")
        codec, rate, channels, seconds = decode_audio(audio.content)
        assert (codec, rate, channels) == ("flac", 24000, 1) and seconds > 0.1
        assert audio.response.headers["content-type"] == "audio/flac"
        with pytest.raises(openai.BadRequestError) as caught:  # the worker's 400, its field named
            client.audio.speech.create(model="kokoro", voice="af_nobody", input=SHORT)
        assert caught.value.param == "voice"
        _native_txt2audio(gateway)
    finally:
        gateway.server.stop()
        emulator.stop()


def _native_txt2audio(gateway: Any) -> None:
    """Native submit -> request-status -> done -> the signed file link decodes."""
    key = gateway.issue_key("speech-tenant").key
    with httpx.Client(base_url=f"{gateway.url}/api/v1/client", headers={"Authorization": f"Bearer {key}"}) as http:
        submitted = http.post("/txt2audio", json={"model": "kokoro", "text": SHORT, "voice": "af_sky", "format": "wav"})
        assert submitted.status_code == 200, submitted.text
        request_id = submitted.json()["data"]["request_id"]
        deadline = time.monotonic() + 90
        while (data := http.get(f"/request-status/{request_id}").json()["data"])["status"] not in ("done", "error"):
            assert time.monotonic() < deadline, data
            time.sleep(0.2)
    assert data["status"] == "done", data
    audio = httpx.get(data["result_url"], timeout=30)  # signed: no key needed
    assert audio.headers["content-type"] == "audio/wav"
    codec, rate, channels, seconds = decode_audio(audio.content)
    assert (codec, rate, channels) == ("pcm_s16le", 24000, 1) and seconds > 0.1
