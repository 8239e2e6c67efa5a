"""The transcribe handler on a tiny Whisper built in the test (CPU, no network, no hub).

``build_tiny_whisper_model`` plants a fixed transcript ("Hello there. How are you?") in
otherwise random weights, so outputs can be compared exactly while every step runs through
faster-whisper and CTranslate2 as in production (see its docstring).
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import math
import threading
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from handlers.common.errors import decode_error
from handlers.common.progress import EMULATOR_PROGRESS_KEY
from handlers.transcribe import engine
from handlers.transcribe.handler import handler
from handlers.transcribe.schema import fallback_temperatures
from tests.contracts.shape import assert_same_shape, load_contract
from tests.handlers.cancelling import cancel_after_first_progress
from tests.handlers.tiny_models import TINY_WHISPER_SEGMENTS, build_tiny_whisper_model

pytestmark = pytest.mark.slow  # loads a real (tiny) model

CONTRACT = load_contract("transcribe")
TRANSCRIPT = "Hello there. How are you?"


def tiny_wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A 440 Hz tone as 8-bit mono wav (the contract fixture's audio)."""
    frames = bytes(
        128 + round(60 * math.sin(2 * math.pi * 440 * i / rate) * min(1.0, i / 400)) for i in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


def noise_wav(seconds: float = 1.0, rate: int = 16000, tone: float = 0.3, noise: float = 0.05) -> bytes:
    """Tone plus noise as 16-bit wav, via numpy."""
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    signal = tone * np.sin(2 * np.pi * 220 * t) + noise * np.random.default_rng(0).standard_normal(t.size)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((signal * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


AUDIO_B64 = base64.b64encode(tiny_wav()).decode()


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_whisper_model(tmp_path_factory.mktemp("whisper") / "tiny-whisper")


@pytest.fixture(autouse=True)
def _env(tiny_whisper: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSCRIBE_MODEL", str(tiny_whisper))
    monkeypatch.setenv("TRANSCRIBE_CPU_THREADS", "1")  # shared CI cores; the model is tiny
    monkeypatch.delenv("TRANSCRIBE_EXTRA_MODELS", raising=False)


def run(payload: dict[str, Any], **job: Any) -> dict[str, Any]:
    return asyncio.run(handler({"id": "job-1", "input": payload, **job}))


def error_of(output: dict[str, Any]) -> dict[str, Any]:
    assert set(output) == {"error"}, output
    error = decode_error(output)
    assert error is not None, output
    return error


# --- the contract ----------------------------------------------------------------------------


def test_the_fixture_audio_is_reproducible() -> None:
    assert CONTRACT["cases"][0]["input"]["audio_base64"] == AUDIO_B64


@pytest.mark.parametrize("case", CONTRACT["cases"], ids=[c["name"] for c in CONTRACT["cases"]])
def test_contract_cases(case: dict[str, Any]) -> None:
    output = run(case["input"])
    if "error" in case:
        error = error_of(output)
        assert {k: error[k] for k in case["error"]} == case["error"], error
        assert error["message"]
        return
    expected = case["output"]
    assert_same_shape(output, expected)
    assert output["transcription"] == expected["transcription"]
    assert output["detected_language"] == expected["detected_language"]
    keys = ("id", "seek", "start", "end", "text", "tokens")
    assert [{k: s[k] for k in keys} for s in output["segments"]] == [
        {k: s[k] for k in keys} for s in expected["segments"]
    ]
    assert output.get("word_timestamps") == expected.get("word_timestamps")


# --- output -----------------------------------------------------------------------------------


def test_segments_are_typed_ordered_and_inside_the_audio() -> None:
    output = run({"audio_base64": base64.b64encode(noise_wav(2.0)).decode()})
    segments = output["segments"]
    assert [s["text"] for s in segments] == [text for _, _, text in TINY_WHISPER_SEGMENTS]
    previous_end = 0.0
    for index, segment in enumerate(segments, start=1):
        assert segment["id"] == index and isinstance(segment["seek"], int)
        assert all(isinstance(segment[k], float) for k in ("start", "end", "temperature", "avg_logprob"))
        assert all(isinstance(token, int) for token in segment["tokens"])
        assert previous_end <= segment["start"] <= segment["end"] <= 2.0
        assert segment["avg_logprob"] > -1 and 0 <= segment["no_speech_prob"] < 0.5
        previous_end = segment["end"]
    assert output["transcription"] == TRANSCRIPT
    assert (output["device"], output["model"], output["translation"]) == (
        engine.get_model().device,
        "tiny-whisper",
        None,
    )
    assert "word_timestamps" not in output


def test_word_timestamps_when_asked() -> None:
    output = run({"audio_base64": AUDIO_B64, "word_timestamps": True})
    words = output["word_timestamps"]
    assert "".join(w["word"] for w in words).strip() == TRANSCRIPT
    assert all(set(w) == {"word", "start", "end"} for w in words)
    times = [t for w in words for t in (w["start"], w["end"])]
    assert times == sorted(times) and times[-1] <= 0.5
    first, second = output["segments"]
    assert first["start"] <= words[0]["start"] and words[1]["end"] <= first["end"] <= second["start"]


@pytest.mark.parametrize(
    ("language", "expected"), [(None, "en"), ("auto", "en"), ("", "en"), ("fr", "fr"), (" DE ", "de"), ("ja", "ja")]
)
def test_language_is_detected_unless_given(language: str | None, expected: str) -> None:
    output = run({"audio_base64": AUDIO_B64, "language": language})
    assert output["detected_language"] == expected


def test_transcription_formats() -> None:
    def text(fmt: str) -> str:
        result: str = run({"audio_base64": AUDIO_B64, "transcription": fmt})["transcription"]
        return result

    assert text("formatted_text") == "Hello there.\nHow are you?"
    assert (
        text("srt")
        == "1\n00:00:00,000 --> 00:00:00,240\nHello there.\n\n2\n00:00:00,260 --> 00:00:00,480\nHow are you?\n\n"
    )
    assert text("vtt").startswith("WEBVTT\n\n00:00:00.000 --> 00:00:00.240\nHello there.\n")


def test_translate_fills_translation() -> None:
    output = run({"audio_base64": AUDIO_B64, "translate": True, "translation": "formatted_text"})
    assert output["translation"] == "Hello there.\nHow are you?"


def test_decoding_options_reach_faster_whisper() -> None:
    output = run(
        {
            "audio_base64": AUDIO_B64,
            "temperature": 0.4,
            "temperature_increment_on_fallback": None,
            "best_of": 2,
            "beam_size": 1,
            "patience": 2.0,
            "length_penalty": 0.5,
            "suppress_tokens": "-1,50257",
            "initial_prompt": "hello world and the",
            "condition_on_previous_text": False,
            "compression_ratio_threshold": None,
            "logprob_threshold": None,
            "no_speech_threshold": None,
        }
    )
    assert {s["temperature"] for s in output["segments"]} == {0.4}
    assert output["transcription"] == TRANSCRIPT
    assert fallback_temperatures(0.0, 0.2) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert fallback_temperatures(0.5, None) == (0.5,)
    assert fallback_temperatures(1.0, 0.2) == (1.0,)


def test_vad_option_runs_silero() -> None:
    # Near-silence holds no speech: Silero VAD removes it all (the tiny model, which ignores
    # its input, would otherwise still "hear" its transcript), and the output stays well-formed.
    hiss = base64.b64encode(noise_wav(1.0, tone=0.0, noise=0.001)).decode()
    assert run({"audio_base64": hiss})["transcription"] == TRANSCRIPT
    output = run({"audio_base64": hiss, "enable_vad": True})
    assert output["segments"] == [] and output["transcription"] == ""
    assert output["detected_language"]


def test_compressed_audio_decodes_in_memory() -> None:
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            (np.sin(np.arange(16000) / 5) * 8000).astype("<i2")[None, :], format="s16", layout="mono"
        )
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    flac = base64.b64encode(buffer.getvalue()).decode()
    assert run({"audio_base64": f"data:audio/flac;base64,{flac}"})["transcription"] == TRANSCRIPT


def test_progress_is_reported_per_segment() -> None:
    updates: list[dict[str, Any]] = []
    run({"audio_base64": AUDIO_B64}, **{EMULATOR_PROGRESS_KEY: updates.append})
    values = [u["progress"] for u in updates]
    assert values and values == sorted(values) and 0 < values[-1] <= 100  # throttled to one per 0.5 s


# --- audio by URL ----------------------------------------------------------------------------


class _AudioServer(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        return

    def do_GET(self) -> None:
        body = tiny_wav() if self.path == "/speech.wav" else b"<html>oops</html>"
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav" if self.path == "/speech.wav" else "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def audio_origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AudioServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_audio_url_is_fetched_from_an_allowlisted_host(audio_origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_FETCH_ALLOWLIST", audio_origin)
    by_url = run({"audio": f"{audio_origin}/speech.wav", "word_timestamps": True})
    by_value = run({"audio_base64": AUDIO_B64, "word_timestamps": True})
    assert by_url == by_value


def test_audio_url_errors_name_audio(audio_origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDIA_FETCH_ALLOWLIST", raising=False)
    refused = error_of(run({"audio": f"{audio_origin}/speech.wav"}))  # loopback, not allowlisted
    assert (refused["param"], refused["code"]) == ("audio", "url_not_allowed")
    assert error_of(run({"audio": "http://169.254.169.254/latest/meta-data/"}))["code"] == "url_not_allowed"
    monkeypatch.setenv("MEDIA_FETCH_ALLOWLIST", audio_origin)
    page = error_of(run({"audio": f"{audio_origin}/page"}))
    assert (page["param"], page["code"]) == ("audio", "unsupported_format")


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"audio_base64": AUDIO_B64, "translate_to": "fr"}, "translate_to"),
        ({"audio_base64": AUDIO_B64, "beam_size": 0}, "beam_size"),
        ({"audio_base64": AUDIO_B64, "temperature": 1.5}, "temperature"),
        ({"audio_base64": AUDIO_B64, "transcription": "json"}, "transcription"),
        ({"audio_base64": AUDIO_B64, "suppress_tokens": "a,b"}, "suppress_tokens"),
        ({"audio_base64": AUDIO_B64, "word_timestamps": "often"}, "word_timestamps"),
        ({"audio_base64": 12}, "audio_base64"),
        ({"audio_base64": "%%%"}, "audio_base64"),
        ({"audio": "file:///etc/passwd"}, "audio"),
        ({"audio": "", "audio_base64": AUDIO_B64}, "audio"),
    ],
)
def test_bad_fields_are_named(payload: dict[str, Any], param: str) -> None:
    error = error_of(run(payload))
    assert (error["type"], error["param"]) == ("invalid_request_error", param), error


def test_input_must_be_an_object() -> None:
    assert error_of(asyncio.run(handler({"id": "x", "input": "audio.wav"})))["param"] == "input"


def test_too_long_audio_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSCRIBE_MAX_DURATION_S", "0.25")
    error = error_of(run({"audio_base64": AUDIO_B64}))
    assert (error["param"], error["code"]) == ("audio_base64", "audio_too_long")


def test_a_model_that_cannot_load_is_a_server_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRANSCRIBE_MODEL", str(tmp_path))  # an empty directory
    error = error_of(run({"audio_base64": AUDIO_B64}))
    assert (error["type"], error["code"]) == ("server_error", "model_load_failed")
    assert str(tmp_path) not in engine._models


# --- models ------------------------------------------------------------------------------------


def test_model_field_picks_only_allowed_models(tiny_whisper: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine.choose_model("large-v3") == str(tiny_whisper)  # the gateway's label: served by the loaded one
    assert engine.choose_model(None) == str(tiny_whisper)
    monkeypatch.setenv("TRANSCRIBE_EXTRA_MODELS", "small, medium")
    assert engine.choose_model("medium") == "medium"
    assert engine.choose_model("large-v2") == str(tiny_whisper)


def test_the_model_loads_once_per_worker() -> None:
    assert engine.get_model() is engine.get_model()
    device, compute_type = engine.device_and_compute_type()
    assert compute_type == {"cuda": "float16", "cpu": "int8"}[device]


def test_audio_and_transcripts_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        run({"audio_base64": AUDIO_B64, "word_timestamps": True, "initial_prompt": "secret prompt words"})
    logged = caplog.text
    assert "transcribed" in logged
    for private in ("Hello", "secret prompt", AUDIO_B64[:40]):
        assert private not in logged


def test_a_cancelled_job_stops_between_segments() -> None:
    long_audio = {"audio_base64": base64.b64encode(noise_wav(seconds=65.0)).decode()}
    assert len(run(long_audio)["segments"]) >= 2  # so stopping after the first one means something
    updates = asyncio.run(cancel_after_first_progress(handler, long_audio))
    assert len(updates) == 1


def test_long_audio_can_run_batched(monkeypatch: pytest.MonkeyPatch) -> None:
    from faster_whisper import BatchedInferencePipeline

    calls: list[int] = []
    real = BatchedInferencePipeline.transcribe

    def counting(self: Any, audio: Any, **options: Any) -> Any:
        calls.append(options["batch_size"])
        assert options["vad_filter"] is True  # the batched pipeline cuts long audio with VAD
        return real(self, audio, **options)

    monkeypatch.setattr(BatchedInferencePipeline, "transcribe", counting)
    monkeypatch.setenv("TRANSCRIBE_BATCH_SIZE", "4")
    monkeypatch.setenv("TRANSCRIBE_BATCHED_MIN_S", "0.1")
    output = run({"audio_base64": AUDIO_B64})
    assert calls == [4] and "error" not in output and isinstance(output["segments"], list)
    monkeypatch.setenv("TRANSCRIBE_BATCHED_MIN_S", "60")  # short audio stays sequential
    run({"audio_base64": AUDIO_B64})
    assert calls == [4]
