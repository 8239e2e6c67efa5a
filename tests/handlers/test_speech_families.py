"""The speech worker's Chatterbox and Qwen3-TTS families, as far as they run without their packages.

``chatterbox-tts`` (torch 2.6) and ``qwen-tts`` (transformers 4.57, torchaudio) cannot be
installed beside this project's torch 2.13, so nothing here synthesises with them. What runs is
everything around the package calls: which family and which checkpoint a model id selects,
the mode each worker can do (a contract error naming ``mode`` otherwise), the job's fields
mapped to each package's arguments, the reference clip handed over, chunking with progress and
cancel points, and the ``engine_unavailable`` error an image without the package gives.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import struct
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from handlers.common.cancel import CancelToken, JobCancelled
from handlers.common.errors import HandlerError, InvalidInput, decode_error
from handlers.common.progress import EMULATOR_PROGRESS_KEY
from handlers.speech import chunking, engine
from handlers.speech import engine_chatterbox as chatterbox
from handlers.speech import engine_qwen3 as qwen3
from handlers.speech.engine import Synthesis
from handlers.speech.handler import handler
from handlers.speech.reference import Reference, decode_reference

QWEN_ALL = "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice,Qwen/Qwen3-TTS-12Hz-1.7B-Base,Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign"
_ENV = (
    "SPEECH_ENGINE",
    "SPEECH_CHATTERBOX_VARIANT",
    "SPEECH_CHATTERBOX_EXAGGERATION",
    "SPEECH_CHATTERBOX_CFG_WEIGHT",
    "SPEECH_CHATTERBOX_TEMPERATURE",
    "SPEECH_DEFAULT_VOICE",
    "SPEECH_CHUNK_CHARS",
    "SPEECH_MAX_TEXT",
    "MEDIA_FETCH_ALLOWLIST",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def run(payload: dict[str, Any]) -> dict[str, Any]:
    job = {"id": "job-1", "input": payload, EMULATOR_PROGRESS_KEY: lambda update: None}
    return asyncio.run(handler(job))


def error_of(out: dict[str, Any]) -> dict[str, Any]:
    error = decode_error(out)
    assert error is not None, f"expected an error, got keys {sorted(out)}"
    return error


def tone(seconds: float, rate: int = 24_000) -> np.ndarray:
    return (0.3 * np.sin(np.arange(int(seconds * rate)) * 2 * math.pi * 220 / rate)).astype(np.float32)


# --- which family, which checkpoints, which modes -------------------------------------------


def test_model_ids_select_the_family_and_its_modes() -> None:
    assert engine.family_of("hexgrad/Kokoro-82M").modes == {"custom_voice"}
    for name in ("ResembleAI/chatterbox", "ResembleAI/chatterbox-turbo"):
        family = engine.family_of(name)
        assert (family.name, family.image) == ("chatterbox", "Dockerfile.chatterbox")
        assert family.modes == {"voice_clone"}
    everything = engine.family_of(QWEN_ALL)
    assert everything.name == "qwen3_tts" and everything.image == "Dockerfile.qwen3"
    assert everything.modes == {"custom_voice", "voice_clone", "voice_design"}
    assert engine.family_of("Qwen/Qwen3-TTS-12Hz-0.6B-Base").modes == {"voice_clone"}
    assert engine.family_of("Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice, Qwen/Qwen3-TTS-12Hz-0.6B-Base").modes == {
        "custom_voice",
        "voice_clone",
    }


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Qwen/Qwen3-TTS-12Hz-0.6B-Base,Qwen/Qwen3-TTS-12Hz-1.7B-Base", "two Qwen3-TTS checkpoints for voice_clone"),
        ("Qwen/Qwen3-TTS-Tokenizer-12Hz", "Cannot tell which mode"),
        ("some/unknown-model", "no known speech family"),
    ],
)
def test_a_model_list_the_worker_cannot_serve_is_a_configuration_error(name: str, words: str) -> None:
    with pytest.raises(HandlerError) as raised:
        engine.family_of(name)
    assert raised.value.code == "bad_configuration" and words in raised.value.message


def test_local_directories_are_recognised_by_their_files(tmp_path: Path) -> None:
    designer = tmp_path / "my-designer"
    designer.mkdir()
    (designer / "config.json").write_text(json.dumps({"model_type": "qwen3_tts", "tts_model_type": "voice_design"}))
    assert engine.family_of(str(designer)).modes == {"voice_design"}
    cloner = tmp_path / "my-cloner"
    cloner.mkdir()
    (cloner / "config.json").write_text(json.dumps({"model_type": "qwen3_tts", "tts_model_type": "base"}))
    assert engine.family_of(f"{designer},{cloner}").modes == {"voice_design", "voice_clone"}

    turbo = tmp_path / "voice-a"
    turbo.mkdir()
    (turbo / "t3_turbo_v1.safetensors").write_bytes(b"")
    assert engine.family_of(str(turbo)).name == "chatterbox"
    assert chatterbox.variant_of(str(turbo)).class_name == "ChatterboxTurboTTS"
    multilingual = tmp_path / "voice-b"
    multilingual.mkdir()
    (multilingual / "t3_mtl23ls_v2.safetensors").write_bytes(b"")
    assert chatterbox.variant_of(str(multilingual)).class_name == "ChatterboxMultilingualTTS"
    assert chatterbox.variant_of("ResembleAI/chatterbox").class_name == "ChatterboxTTS"
    assert chatterbox.variant_of("ResembleAI/chatterbox-turbo").name == "turbo"


def test_the_variant_and_engine_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECH_CHATTERBOX_VARIANT", "multilingual")
    assert chatterbox.variant_of("ResembleAI/chatterbox").name == "multilingual"
    monkeypatch.setenv("SPEECH_CHATTERBOX_VARIANT", "german")
    with pytest.raises(HandlerError, match="SPEECH_CHATTERBOX_VARIANT"):
        chatterbox.variant_of("ResembleAI/chatterbox")
    monkeypatch.setenv("SPEECH_ENGINE", "qwen3_tts")  # the id says nothing; the setting decides
    monkeypatch.setenv("SPEECH_MODEL", "/models/CustomVoice")
    assert engine.family_of(engine.model_id()).modes == {"custom_voice"}


# --- the handler: mode checks, then the family's own loader ---------------------------------


@pytest.mark.parametrize(
    ("model", "payload"),
    [
        ("ResembleAI/chatterbox", {"text": "hi", "voice": "ryan"}),
        ("ResembleAI/chatterbox", {"text": "hi", "mode": "voice_design", "instruct": "a calm voice"}),
        ("Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", {"text": "hi", "mode": "voice_design", "instruct": "warm"}),
        ("Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign", {"text": "hi", "voice": "vivian"}),
        ("Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign", {"text": "hi", "mode": "voice_clone", "ref_audio": "https://x/a.wav"}),
    ],
)
def test_a_mode_the_workers_checkpoints_cannot_do_names_mode(
    model: str, payload: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPEECH_MODEL", model)
    error = error_of(run(payload))
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "mode", "unsupported_mode")


@pytest.mark.parametrize(
    ("model", "payload", "package", "image"),
    [
        (QWEN_ALL, {"text": "hi", "voice": "ryan"}, "qwen-tts", "Dockerfile.qwen3"),
        (QWEN_ALL, {"text": "hi", "mode": "voice_design", "instruct": "an old sailor"}, "qwen-tts", "Dockerfile.qwen3"),
    ],
)
def test_a_family_whose_package_is_missing_names_its_image(
    model: str, payload: dict[str, Any], package: str, image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This image (torch 2.13) has neither package: the dispatch reaches the family's own loader,
    # whose import fails, and the error says which image carries it.
    monkeypatch.setenv("SPEECH_MODEL", model)
    error = error_of(run(payload))
    assert (error["type"], error["code"]) == ("server_error", "engine_unavailable")
    assert package in error["message"] and f"handlers/speech/{image}" in error["message"]


def test_chatterbox_loader_reports_its_image() -> None:
    with pytest.raises(HandlerError) as raised:
        chatterbox.ChatterboxEngine.load("ResembleAI/chatterbox")
    assert raised.value.code == "engine_unavailable"
    assert "chatterbox-tts" in raised.value.message and "Dockerfile.chatterbox" in raised.value.message


# --- Chatterbox: the job's fields as the package's arguments --------------------------------


def test_chatterbox_languages() -> None:
    english, multilingual = chatterbox.VARIANTS["english"], chatterbox.VARIANTS["multilingual"]
    assert [chatterbox.language_id(english, lang) for lang in (None, "en-us", "EN-GB")] == [None, None, None]
    with pytest.raises(InvalidInput) as raised:
        chatterbox.language_id(english, "fr")
    assert (raised.value.param, raised.value.code) == ("lang", "unknown_language")
    assert [chatterbox.language_id(multilingual, lang) for lang in (None, "pt-br", "fr", "zh")] == [
        "en",
        "pt",
        "fr",
        "zh",
    ]
    with pytest.raises(InvalidInput, match="lang must be one of ar, da"):
        chatterbox.language_id(multilingual, "xx")


def test_chatterbox_arguments_per_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECH_CHATTERBOX_EXAGGERATION", "0.7")
    settings = chatterbox.Settings.from_env()
    english, multilingual, turbo = (chatterbox.VARIANTS[key] for key in ("english", "multilingual", "turbo"))
    assert chatterbox.generate_arguments(english, settings, None) == {
        "temperature": 0.8,
        "exaggeration": 0.7,
        "cfg_weight": 0.5,
    }
    assert chatterbox.generate_arguments(multilingual, settings, "de")["language_id"] == "de"
    # Turbo takes neither exaggeration nor guidance (the package warns and ignores them).
    assert chatterbox.generate_arguments(turbo, settings, None) == {"temperature": 0.8}
    assert chatterbox.conditioning_arguments(turbo, settings) == {"exaggeration": 0.0}
    assert chatterbox.conditioning_arguments(english, settings) == {"exaggeration": 0.7}
    monkeypatch.setenv("SPEECH_CHATTERBOX_CFG_WEIGHT", "lots")
    with pytest.raises(HandlerError, match="SPEECH_CHATTERBOX_CFG_WEIGHT must be a number between 0 and 1"):
        chatterbox.Settings.from_env()


def test_chatterbox_turbo_refuses_a_reference_of_five_seconds_or_less() -> None:
    # The check runs before the model is touched (the package would fail an assert instead);
    # `object()` stands in for the package's model, which is never reached.
    turbo = chatterbox.ChatterboxEngine("ResembleAI/chatterbox-turbo", object(), chatterbox.VARIANTS["turbo"], "cpu")
    request = Synthesis("Hello.", "voice_clone", None, None, 1.0, reference=Reference(tone(4.0), 24_000))
    with pytest.raises(InvalidInput) as raised:
        turbo.synthesize(request, lambda percent: None, CancelToken())
    assert (raised.value.param, raised.value.code) == ("ref_audio", "audio_too_short")


# --- Qwen3-TTS: the job's fields as the package's arguments ---------------------------------

SUPPORTED_LANGUAGES = ["auto", "chinese", "english", "japanese", "korean", "german", "french", "russian"]
SPEAKERS = ["aiden", "dylan", "eric", "ono_anna", "ryan", "serena", "sohee", "uncle_fu", "vivian"]


def test_qwen3_languages_and_speakers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert qwen3.language_name(None, SUPPORTED_LANGUAGES) == "auto"
    assert qwen3.language_name("en-us", SUPPORTED_LANGUAGES) == "english"
    assert qwen3.language_name("ZH", SUPPORTED_LANGUAGES) == "chinese"
    assert qwen3.language_name("German", SUPPORTED_LANGUAGES) == "german"
    with pytest.raises(InvalidInput) as raised:
        qwen3.language_name("pt-br", SUPPORTED_LANGUAGES)  # a language this checkpoint does not list
    assert (raised.value.param, raised.value.code) == ("lang", "unknown_language")
    assert qwen3.speaker_name(None, SPEAKERS) == "vivian"
    assert qwen3.speaker_name("Ryan", SPEAKERS) == "ryan"
    monkeypatch.setenv("SPEECH_DEFAULT_VOICE", "Sohee")
    assert qwen3.speaker_name(None, SPEAKERS) == "sohee"
    with pytest.raises(InvalidInput) as raised:
        qwen3.speaker_name("af_sky", SPEAKERS)
    assert (raised.value.param, raised.value.code) == ("voice", "unknown_voice")
    assert "vivian" in raised.value.message


def test_qwen3_clone_prompt_uses_the_transcript_when_there_is_one() -> None:
    reference = Reference(tone(3.5), 24_000)
    with_text = qwen3.clone_prompt_arguments(reference, "  Hello from the clip.  ")
    assert with_text["ref_text"] == "Hello from the clip." and with_text["x_vector_only_mode"] is False
    samples, rate = with_text["ref_audio"]
    assert rate == 24_000 and samples is reference.samples  # in memory: no file, no URL
    without = qwen3.clone_prompt_arguments(reference, "   ")
    assert without["ref_text"] is None and without["x_vector_only_mode"] is True


def test_qwen3_calls_per_mode() -> None:
    method, arguments = qwen3.call_arguments("custom_voice", "Hi.", "english", speaker="ryan", instruct="cheerful")
    assert method == "generate_custom_voice"
    assert arguments == {"text": "Hi.", "speaker": "ryan", "language": "english", "instruct": "cheerful"}
    prompt = object()
    method, arguments = qwen3.call_arguments("voice_clone", "Hi.", "auto", prompt=prompt)
    assert method == "generate_voice_clone" and arguments["voice_clone_prompt"] is prompt
    assert "ref_audio" not in arguments  # the prompt is built once per job, not per chunk
    method, arguments = qwen3.call_arguments("voice_design", "Hi.", "auto", instruct="a gravelly old sailor")
    assert (method, arguments["instruct"]) == ("generate_voice_design", "a gravelly old sailor")


def test_qwen3_reads_instruct_in_custom_voice() -> None:
    # The 1.7B CustomVoice takes a style instruction, so `instruct` is not reported as ignored.
    assert "instruct" in engine.FAMILIES["qwen3_tts"].reads["custom_voice"]
    assert "instruct" not in engine.FAMILIES["kokoro"].reads["custom_voice"]


# --- chunks, progress, cancel, the reference as a file --------------------------------------


def test_plan_keeps_every_word_within_the_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECH_CHUNK_CHARS", "40")
    text = "First sentence here. A second, somewhat longer sentence follows it! Third? Fourth one ends."
    pieces = chunking.plan(text)
    assert len(pieces) >= 3 and all(len(piece) <= 40 for piece in pieces)
    assert " ".join(pieces).split() == text.split()


def test_run_calls_reports_progress_and_stops_when_cancelled() -> None:
    pieces = ["one two", "three four five", "six"]
    progress: list[float] = []
    audio = chunking.run_calls(pieces, lambda piece: np.ones(len(piece), np.float32), progress.append, CancelToken())
    assert audio.size == sum(len(piece) for piece in pieces)
    assert progress == sorted(progress) and progress[-1] == pytest.approx(95.0) and len(progress) == 3
    cancel = CancelToken()
    spoken: list[str] = []

    def speak(piece: str) -> np.ndarray:
        spoken.append(piece)
        cancel.cancel()
        return np.zeros(10, np.float32)

    with pytest.raises(JobCancelled):
        chunking.run_calls(pieces, speak, lambda percent: None, cancel)
    assert spoken == ["one two"]


def test_the_reference_reaches_chatterbox_as_a_wav_of_the_same_audio() -> None:
    # reference.py decodes the fetched clip at the family's rate; Chatterbox reads a file-like WAV.
    source = io.BytesIO()
    with wave.open(source, "wb") as clip:
        clip.setnchannels(2)
        clip.setsampwidth(2)
        clip.setframerate(16_000)
        wave_16k = [int(8000 * math.sin(i * 2 * math.pi * 220 / 16_000)) for i in range(64_000)]  # 4 s
        clip.writeframes(struct.pack("<128000h", *(value for value in wave_16k for _ in range(2))))  # stereo
    reference = decode_reference(source.getvalue(), engine.FAMILIES["chatterbox"].sample_rate)
    assert reference.sample_rate == 24_000 and reference.duration_s == pytest.approx(4.0, abs=0.05)
    blob = chunking.wav_bytes(reference.samples, reference.sample_rate)
    with av.open(io.BytesIO(blob), mode="r") as container:
        stream = container.streams.audio[0]
        decoded = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(stream)])
        assert (stream.rate, stream.channels) == (24_000, 1)
    assert decoded.size == reference.samples.size
    assert np.abs(decoded / 32768.0 - reference.samples).max() < 2e-4


def test_speed_one_leaves_the_audio_alone() -> None:
    samples = tone(1.0)
    assert chunking.apply_speed(samples, 1.0) is samples


def test_speed_stretches_with_librosa() -> None:
    pytest.importorskip("librosa", reason="librosa ships in the Chatterbox and Qwen3 images, not here")
    samples = tone(2.0)
    assert chunking.apply_speed(samples, 2.0).size == pytest.approx(samples.size / 2, rel=0.02)
