"""The music handler on a tiny random ACE-Step 1.5 and a tiny random MusicGen (CPU, no hub).

Model tests go through ``handler(job)`` and the real loading code on directories that
``tests/handlers/tiny_music.py`` saves in the real checkpoints' layouts; every output is
decoded back with PyAV. Input checks that fail before any model loads run without one.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import struct
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from handlers.common import audio
from handlers.common.errors import decode_error
from handlers.common.progress import EMULATOR_PROGRESS_KEY
from handlers.music import engine
from handlers.music.engine_musicgen import describe
from handlers.music.handler import handler
from handlers.music.schema import FORMATS, MusicInput
from tests.contracts.shape import assert_same_shape, load_contract
from tests.handlers.cancelling import cancel_after_first_progress
from tests.handlers.static_files import static_server
from tests.handlers.tiny_music import ACE_RATE, MUSICGEN_RATE, build_tiny_acestep_pipeline, build_tiny_musicgen
from tests.support.servers import ServerThread

_ENV = (  # a developer's or CI's own settings must not leak into these tests
    "MUSIC_ENGINE",
    "MUSIC_DEVICE",
    "MUSIC_MIN_DURATION",
    "MUSIC_MAX_DURATION",
    "MUSIC_MAX_STEPS",
    "MUSIC_MAX_INLINE_BYTES",
    "MUSIC_DEFAULT_FORMAT",
    "MUSIC_MAX_REFERENCE_S",
    "MEDIA_FETCH_ALLOWLIST",
    "BUCKET_ENDPOINT_URL",
)
CAPTION = "lofi hip hop with a mellow piano"


@pytest.fixture(scope="session")
def tiny_ace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_acestep_pipeline(tmp_path_factory.mktemp("models") / "tiny-acestep-v15-turbo")


@pytest.fixture(scope="session")
def tiny_ace_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_acestep_pipeline(tmp_path_factory.mktemp("models") / "tiny-acestep-v15-base", turbo=False)


@pytest.fixture(scope="session")
def tiny_musicgen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_musicgen(tmp_path_factory.mktemp("models") / "tiny-musicgen-small")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MUSIC_MODEL", "ACE-Step/acestep-v15-xl-turbo-diffusers")  # never loaded by input checks
    monkeypatch.setenv("MUSIC_PROGRESS_INTERVAL_S", "0")  # every step reported
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ace(tiny_ace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MUSIC_MODEL", str(tiny_ace))
    return tiny_ace


@pytest.fixture
def musicgen(tiny_musicgen: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MUSIC_MODEL", str(tiny_musicgen))
    monkeypatch.setenv("MUSIC_MIN_DURATION", "1")  # the tiny decoder writes 50 frames/s one by one
    return tiny_musicgen


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


def tone_wav(seconds: float, rate: int = 22_050) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        count = int(seconds * rate)
        wav.writeframes(struct.pack(f"<{count}h", *(int(8000 * math.sin(i / 5)) for i in range(count))))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def clips() -> Iterator[str]:
    files = {
        "/three.wav": (tone_wav(3.0), "audio/wav"),
        "/blip.wav": (tone_wav(0.4), "audio/wav"),
        "/noise.wav": (bytes(range(256)) * 64, "audio/wav"),
        "/page": (b"<html>not audio</html>", "text/html"),
    }
    with static_server(files) as url:
        yield url


# --- input checks (no model) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"caption": "", "duration": 30}, "caption"),
        ({"caption": " \n ", "duration": 30}, "caption"),
        ({"duration": 30}, "caption"),
        ({"caption": "jazz"}, "duration"),
        ({"caption": "jazz", "duration": 5}, "duration"),
        ({"caption": "jazz", "duration": 601}, "duration"),
        ({"caption": "jazz", "duration": "long"}, "duration"),
        ({"caption": "jazz", "duration": 30, "inference_steps": 0}, "inference_steps"),
        ({"caption": "jazz", "duration": 30, "inference_steps": 500}, "inference_steps"),
        ({"caption": "jazz", "duration": 30, "guidance_scale": 25}, "guidance_scale"),
        ({"caption": "jazz", "duration": 30, "bpm": 12}, "bpm"),
        ({"caption": "jazz", "duration": 30, "timesignature": 5}, "timesignature"),
        ({"caption": "jazz", "duration": 30, "format": "ogg"}, "format"),
        ({"caption": "jazz", "duration": 30, "seed": -1}, "seed"),
        ({"caption": "jazz", "duration": 30, "reference_audio": " "}, "reference_audio"),
        ({"caption": "jazz", "duration": 30, "tempo": "fast"}, "tempo"),
        ({"caption": "jazz", "duration": 30, "task": "txt2audio"}, "task"),
    ],
)
def test_bad_input_names_the_field(payload: dict[str, Any], param: str) -> None:
    error = error_of(run(payload))
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_the_duration_range_is_the_operators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSIC_MAX_DURATION", "60")
    error = error_of(run({"caption": "jazz", "duration": 61}))
    assert (error["param"], error["message"]) == ("duration", "duration must be between 10 and 60 seconds")


def test_families_from_ids_and_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine.family_of("ACE-Step/acestep-v15-xl-turbo-diffusers").name == "acestep"
    assert engine.family_of("ACE-Step/Ace-Step1.5").name == "acestep"
    assert engine.family_of("facebook/musicgen-small").name == "musicgen"
    (tmp_path / "model_index.json").write_text('{"_class_name": "AceStepPipeline"}')
    assert engine.family_of(str(tmp_path)).name == "acestep"
    monkeypatch.setenv("MUSIC_MODEL", "some/unknown-model")
    assert error_of(run({"caption": "jazz", "duration": 30}))["code"] == "bad_configuration"
    monkeypatch.setenv("MUSIC_ENGINE", "musicgen")
    assert engine.family_of("some/unknown-model").name == "musicgen"


def test_musicgen_refuses_lyrics_and_a_reference_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSIC_MODEL", "facebook/musicgen-small")  # refused before it would load
    sung = error_of(run({"caption": "pop", "duration": 30, "lyrics": "[verse]\nla la la"}))
    assert (sung["param"], sung["code"]) == ("lyrics", "unsupported_field")
    styled = error_of(run({"caption": "pop", "duration": 30, "reference_audio": "https://example.com/a.mp3"}))
    assert (styled["param"], styled["code"]) == ("reference_audio", "unsupported_field")
    # "[Instrumental]" (the seeds' default) is no lyrics at all.
    instrumental = MusicInput(caption="pop", duration=30, lyrics=" [Instrumental] ", inference_steps=8)
    assert engine.check_request(engine.FAMILIES["musicgen"], instrumental) == ["inference_steps"]
    assert engine.check_request(engine.FAMILIES["acestep"], instrumental) == []


def test_musicgen_prompt_carries_the_metadata() -> None:
    request = engine.Composition(
        caption="Warm jazz trio.", duration=10, seed=1, steps=None, guidance_scale=None, lyrics="",
        bpm=96, keyscale="F# minor", timesignature=6, vocal_language="en",
    )  # fmt: skip
    assert describe(request) == "Warm jazz trio, 96 bpm, F# minor, 6/8 time"


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac"])
def test_stereo_encodes_and_decodes_at_the_model_rate(fmt: str) -> None:
    t = np.arange(2 * ACE_RATE) / ACE_RATE
    samples = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.3 * np.sin(2 * np.pi * 330 * t)]).astype(np.float32)
    _, rate, channels, seconds = decode_audio(audio.encode(samples, ACE_RATE, FORMATS[fmt], ACE_RATE))
    assert (rate, channels) == (ACE_RATE, 2)
    assert seconds == pytest.approx(2.0, abs=0.03)


# --- ACE-Step on the tiny pipeline ---------------------------------------------------------


@pytest.mark.slow
def test_ace_step_makes_the_duration_asked_with_a_report_per_step(ace: Path) -> None:
    updates: list[dict[str, Any]] = []
    job = {
        "caption": CAPTION,
        "duration": 10.5,
        "inference_steps": 3,
        "seed": 7,
        "format": "wav",
        "lyrics": "[verse]\nhello night\n[chorus]\nla la",
        "bpm": 90,
        "keyscale": "C major",
        "timesignature": 4,
    }
    out = run(job, updates.append)
    codec, rate, channels, seconds = decode_audio(file_bytes(out))
    assert (codec, rate, channels) == ("pcm_s16le", out["sample_rate"], out["channels"]) == ("pcm_s16le", ACE_RATE, 2)
    assert seconds == pytest.approx(10.5, rel=0.1) and seconds == pytest.approx(out["duration_s"], abs=0.001)
    assert [update["progress"] for update in updates] == [31.7, 63.3, 95.0]  # one per diffusion step
    assert out["usage"] == {"seconds": 10.5, "inference_steps": 3} and out["seed"] == 7
    assert out["files"][0]["content_type"] == "audio/wav" and "ignored" not in out


@pytest.mark.slow
def test_ace_step_same_seed_same_bytes(ace: Path) -> None:
    job = {"caption": CAPTION, "duration": 10, "inference_steps": 2, "seed": 11, "format": "flac"}
    first, again, other = run(job), run(job), run(job | {"seed": 12})
    assert file_bytes(first) == file_bytes(again)
    assert file_bytes(first) != file_bytes(other)
    assert run(job | {"caption": "a marching band"})["files"] != first["files"]  # the caption reaches the DiT


@pytest.mark.slow
def test_guidance_is_applied_by_base_checkpoints_and_reported_ignored_by_turbo(
    ace: Path, tiny_ace_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = {"caption": CAPTION, "duration": 10, "inference_steps": 2, "seed": 9, "format": "wav"}
    turbo = run(job | {"guidance_scale": 7})
    assert turbo["ignored"] == ["guidance_scale"] and file_bytes(turbo) == file_bytes(run(job))
    monkeypatch.setenv("MUSIC_MODEL", str(tiny_ace_base))
    plain, guided = run(job | {"guidance_scale": 1}), run(job | {"guidance_scale": 5})
    assert "ignored" not in guided and file_bytes(plain) != file_bytes(guided)


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "codec"), [("mp3", "mp3float"), ("flac", "flac")])
def test_ace_step_compressed_formats(ace: Path, fmt: str, codec: str) -> None:
    out = run({"caption": CAPTION, "duration": 10, "inference_steps": 1, "seed": 1, "format": fmt})
    assert out["format"] == fmt and out["files"][0]["content_type"] == FORMATS[fmt].content_type
    name, rate, channels, seconds = decode_audio(file_bytes(out))
    assert (name, rate, channels) == (codec, ACE_RATE, 2)
    assert seconds == pytest.approx(10, rel=0.1)  # mp3 adds encoder padding; within the contract's 10 %


@pytest.mark.slow
def test_ace_step_reference_audio_conditions_the_timbre(ace: Path, clips: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_FETCH_ALLOWLIST", clips.removeprefix("http://"))
    job = {"caption": CAPTION, "duration": 10, "inference_steps": 2, "seed": 5, "format": "wav"}
    plain = run(job)
    styled = run(job | {"reference_audio": f"{clips}/three.wav"})  # the VAE encodes 30 s of it: slow
    assert decode_audio(file_bytes(styled))[1:3] == (ACE_RATE, 2)
    assert file_bytes(styled) != file_bytes(plain)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "code"),
    [("/blip.wav", "audio_too_short"), ("/noise.wav", "invalid_audio"), ("/page", "unsupported_format"),
     ("/missing.wav", "media_fetch_failed")],
)  # fmt: skip
def test_a_bad_reference_names_reference_audio(
    ace: Path, clips: str, monkeypatch: pytest.MonkeyPatch, path: str, code: str
) -> None:
    monkeypatch.setenv("MEDIA_FETCH_ALLOWLIST", clips.removeprefix("http://"))
    error = error_of(run({"caption": CAPTION, "duration": 10, "reference_audio": clips + path}))
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "reference_audio", code)


@pytest.mark.slow
def test_reference_urls_obey_the_address_rule(ace: Path, clips: str) -> None:
    error = error_of(run({"caption": CAPTION, "duration": 10, "reference_audio": f"{clips}/three.wav"}))
    assert (error["param"], error["code"]) == ("reference_audio", "url_not_allowed")  # loopback, not allowlisted


@pytest.mark.slow
def test_nothing_of_the_request_reaches_the_logs(ace: Path, capfd: pytest.CaptureFixture[str]) -> None:
    run({"caption": "zebra quartz anthem", "lyrics": "[verse]\nxylophone", "duration": 10, "inference_steps": 1})
    captured = capfd.readouterr()
    logged = captured.out + captured.err
    assert "zebra" not in logged and "xylophone" not in logged


@pytest.mark.slow
async def test_a_cancelled_job_stops_after_its_current_step(ace: Path) -> None:
    updates = await cancel_after_first_progress(
        handler, {"caption": CAPTION, "duration": 10, "inference_steps": 6, "seed": 1}
    )
    assert len(updates) == 1


@pytest.mark.slow
def test_inline_cap_names_the_setting(ace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSIC_MAX_INLINE_BYTES", "1000")
    error = error_of(run({"caption": CAPTION, "duration": 10, "inference_steps": 1, "format": "wav"}))
    assert error["code"] == "result_too_large" and "MUSIC_MAX_INLINE_BYTES" in error["message"]


@pytest.mark.slow
def test_contract_examples(ace: Path) -> None:
    for case in load_contract("music")["cases"]:
        out = run(case["input"])
        if "error" in case:
            assert error_of(out) | {"message": None} == case["error"] | {"message": None}, case["name"]
        else:
            assert_same_shape(out, case["output"])


# --- MusicGen on the tiny model ------------------------------------------------------------


@pytest.mark.slow
def test_musicgen_makes_the_duration_asked(musicgen: Path) -> None:
    updates: list[dict[str, Any]] = []
    job = {
        "caption": CAPTION,
        "duration": 2,
        "seed": 3,
        "format": "wav",
        "bpm": 100,
        "inference_steps": 8,
        "vocal_language": "en",
        "lyrics": "[Instrumental]",
    }
    out = run(job, updates.append)
    codec, rate, channels, seconds = decode_audio(file_bytes(out))
    assert (codec, rate, channels) == ("pcm_s16le", out["sample_rate"], out["channels"]) == ("pcm_s16le", 32000, 1)
    assert seconds == pytest.approx(2, rel=0.1) and seconds == pytest.approx(out["duration_s"], abs=0.001)
    progress = [update["progress"] for update in updates]
    assert len(progress) == out["usage"]["inference_steps"] == 2 * 50 + 3  # one per frame, plus the delay
    assert progress == sorted(progress) and progress[-1] == 95.0
    assert out["ignored"] == ["inference_steps", "vocal_language"]
    assert out["sample_rate"] == MUSICGEN_RATE


@pytest.mark.slow
def test_musicgen_same_seed_same_bytes_and_its_length_limit(musicgen: Path) -> None:
    job = {"caption": CAPTION, "duration": 1, "seed": 21, "format": "flac"}
    first, again, other = run(job), run(job), run(job | {"seed": 22})
    assert file_bytes(first) == file_bytes(again) != file_bytes(other)
    too_long = error_of(run(job | {"duration": 45}))  # past the decoder's 2048 positions (~40.9 s)
    assert (too_long["param"], too_long["type"]) == ("duration", "invalid_request_error")


@pytest.mark.slow
async def test_a_cancelled_musicgen_job_stops_after_its_current_frame(musicgen: Path) -> None:
    updates = await cancel_after_first_progress(handler, {"caption": CAPTION, "duration": 5, "seed": 1})
    assert len(updates) == 1  # of 253 frames


# --- behind the emulator -------------------------------------------------------------------


@pytest.mark.slow
def test_runs_behind_the_emulator(tiny_ace: Path) -> None:
    endpoint = EmulatorEndpoint(handler="handlers.music.handler:handler", env={"MUSIC_MODEL": str(tiny_ace)})
    server = ServerThread(create_emulator_app({"music": endpoint})).start()
    try:
        job = {
            "input": {
                "task": "txt2music",
                "model": "ACE-Step/acestep-v15-xl-turbo-diffusers",
                "caption": CAPTION,
                "duration": 10,
                "inference_steps": 2,
                "seed": 4,
                "format": "mp3",
            }
        }
        body = httpx.post(f"{server.url}/v2/music/runsync?wait=60000", json=job, timeout=90).json()
        assert body["status"] == "COMPLETED", body.get("error")
        out = body["output"]
        assert (
            out["model"] == "ACE-Step/acestep-v15-xl-turbo-diffusers"
            and out["files"][0]["content_type"] == "audio/mpeg"
        )
        assert decode_audio(file_bytes(out))[1:3] == (ACE_RATE, 2)
        failed = httpx.post(f"{server.url}/v2/music/runsync?wait=60000", json={"input": {"caption": "x"}}, timeout=90)
        assert failed.json()["status"] == "FAILED"
        assert decode_error(failed.json())["param"] == "duration"  # type: ignore[index]
    finally:
        server.stop()
