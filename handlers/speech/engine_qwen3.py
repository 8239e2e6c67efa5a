"""Qwen3-TTS through the ``qwen-tts`` package: every mode, one checkpoint per mode.

A Qwen3-TTS checkpoint does one thing (its config's ``tts_model_type``): ``custom_voice``
(``Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice``: nine preset speakers, and on the 1.7B a style
``instruct``), ``base`` (``...-Base``: cloning from a reference clip, our ``voice_clone``) or
``voice_design`` (``...-1.7B-VoiceDesign``: a voice described in words). A worker therefore
names one checkpoint per mode it serves, comma-separated in ``SPEECH_MODEL``; each is loaded
with ``Qwen3TTSModel.from_pretrained`` (a hub id or a local directory, as transformers loads
either) and a job goes to the checkpoint of its mode through the package's
``generate_custom_voice`` / ``generate_voice_clone`` / ``generate_voice_design``.

A clone prompt is built once per job with ``create_voice_clone_prompt`` from the reference
samples already decoded in memory (``(samples, rate)``, as the package takes them): with
``ref_text`` it is the in-context mode (the transcript and the clip's codes lead the text);
without it only the speaker embedding is used (``x_vector_only_mode``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handlers.common.cancel import CancelToken
from handlers.common.errors import HandlerError, InvalidInput
from handlers.speech import chunking
from handlers.speech.engine import Speech, Synthesis, unavailable
from handlers.speech.reference import Reference

logger = logging.getLogger("handlers.speech")

# config.json's tts_model_type -> the mode it serves
MODE_OF_TYPE = {"custom_voice": "custom_voice", "base": "voice_clone", "voice_design": "voice_design"}
# What the published checkpoints' ids end with -> the mode (when there is no local config to read)
_NAME_SUFFIXES = (("customvoice", "custom_voice"), ("voicedesign", "voice_design"), ("base", "voice_clone"))
# A job's lang (the catalogue's slugs, ISO codes) -> the language names the model takes.
LANGUAGES = {
    "en": "english", "en-us": "english", "en-gb": "english", "zh": "chinese", "zh-cn": "chinese",
    "ja": "japanese", "ko": "korean", "de": "german", "fr": "french", "fr-fr": "french", "ru": "russian",
    "pt": "portuguese", "pt-br": "portuguese", "es": "spanish", "it": "italian",
}  # fmt: skip
DEFAULT_SPEAKER = "vivian"  # routing.yaml's default voice for Qwen3_TTS


def checkpoints(name: str) -> list[str]:
    return [part.strip() for part in name.split(",") if part.strip()]


def mode_of_checkpoint(checkpoint: str) -> str:
    """The mode one checkpoint serves: a local directory's ``tts_model_type``, else its id's suffix."""
    config = Path(checkpoint) / "config.json"
    if config.is_file():
        kind = json.loads(config.read_text()).get("tts_model_type")
        if kind in MODE_OF_TYPE:
            return MODE_OF_TYPE[kind]
    squashed = checkpoint.rstrip("/").rsplit("/", 1)[-1].lower().replace("-", "").replace("_", "")
    for suffix, mode in _NAME_SUFFIXES:
        if squashed.endswith(suffix):
            return mode
    raise HandlerError(
        f"Cannot tell which mode the Qwen3-TTS checkpoint {checkpoint!r} serves "
        "(an id ending in CustomVoice, Base or VoiceDesign, or a directory whose config.json has tts_model_type)",
        code="bad_configuration",
    )


def checkpoint_modes(name: str) -> dict[str, str]:
    """``checkpoint -> mode`` for a ``SPEECH_MODEL`` list; two checkpoints for one mode is an error."""
    found: dict[str, str] = {}
    for checkpoint in checkpoints(name):
        mode = mode_of_checkpoint(checkpoint)
        if mode in found.values():
            raise HandlerError(f"SPEECH_MODEL names two Qwen3-TTS checkpoints for {mode}", code="bad_configuration")
        found[checkpoint] = mode
    if not found:
        raise HandlerError("SPEECH_MODEL names no Qwen3-TTS checkpoint", code="bad_configuration")
    return found


def language_name(lang: str | None, supported: list[str] | None) -> str:
    """The model's language name for a job's ``lang`` (``auto`` when none); errors name ``lang``."""
    if lang is None or not lang.strip():
        return "auto"
    slug = lang.strip().lower()
    name = LANGUAGES.get(slug, slug)  # full names ("english") pass as they are
    allowed = {entry.lower() for entry in supported} if supported is not None else None
    if (allowed is not None and name not in allowed) or (allowed is None and name not in LANGUAGES.values()):
        choices = sorted(allowed or set(LANGUAGES.values()))
        message = f"lang must be one of {', '.join(choices)} or a code for one"
        raise InvalidInput("lang", message, code="unknown_language")
    return name


def speaker_name(voice: str | None, supported: list[str] | None) -> str:
    """The preset speaker for ``custom_voice``: the job's, else ``SPEECH_DEFAULT_VOICE``, else vivian."""
    speakers = sorted(entry.lower() for entry in supported or [])
    if not speakers:
        raise HandlerError("This Qwen3-TTS checkpoint lists no speakers", code="bad_configuration")
    if voice is not None and voice.strip():
        wanted = voice.strip().lower()
        if wanted not in speakers:
            raise InvalidInput(
                "voice", f"voice is not one of this model's voices ({', '.join(speakers)})", code="unknown_voice"
            )
        return wanted
    configured = os.environ.get("SPEECH_DEFAULT_VOICE", "").strip().lower()
    for candidate in (configured, DEFAULT_SPEAKER):
        if candidate in speakers:
            return candidate
    return speakers[0]


def clone_prompt_arguments(reference: Reference, ref_text: str | None) -> dict[str, Any]:
    """``create_voice_clone_prompt`` arguments: in-context with a transcript, speaker embedding without."""
    transcript = (ref_text or "").strip() or None
    return {
        "ref_audio": (reference.samples, reference.sample_rate),
        "ref_text": transcript,
        "x_vector_only_mode": transcript is None,
    }


def call_arguments(
    mode: str, text: str, language: str, *, speaker: str | None = None, instruct: str | None = None,
    prompt: Any = None,
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """The ``Qwen3TTSModel`` method for a mode and its keyword arguments for one chunk."""
    if mode == "custom_voice":
        return "generate_custom_voice", {"text": text, "speaker": speaker, "language": language, "instruct": instruct}
    if mode == "voice_clone":
        return "generate_voice_clone", {"text": text, "language": language, "voice_clone_prompt": prompt}
    if mode == "voice_design":
        return "generate_voice_design", {"text": text, "instruct": instruct, "language": language}
    raise InvalidInput("mode", f"Qwen3-TTS does not do {mode}", code="unsupported_mode")


class Qwen3Engine:
    def __init__(self, name: str, models: dict[str, Any], device: str) -> None:
        self.name = name
        self.models = models  # mode -> Qwen3TTSModel
        self.modes = frozenset(models)
        self.device = device
        first = next(iter(models.values()))
        self.sample_rate = int(first.model.speech_tokenizer.get_output_sample_rate())
        self._lock = threading.Lock()  # one generate at a time on the GPU

    @classmethod
    def load(cls, name: str) -> Qwen3Engine:
        wanted = checkpoint_modes(name)
        try:
            from qwen_tts import Qwen3TTSModel
        except ImportError as exc:
            raise unavailable("qwen3_tts", "qwen-tts", exc) from exc
        import torch

        device = chunking.choose_device()
        models: dict[str, Any] = {}
        for checkpoint, mode in wanted.items():
            try:
                model = Qwen3TTSModel.from_pretrained(checkpoint, **load_arguments(device, torch))
            except Exception as exc:
                raise HandlerError(
                    f"Could not load speech model {checkpoint!r}: {type(exc).__name__}: {exc}",
                    code="model_load_failed",
                ) from exc
            actual = MODE_OF_TYPE.get(str(model.model.tts_model_type))
            if actual != mode:
                raise HandlerError(
                    f"{checkpoint!r} is a {model.model.tts_model_type} checkpoint, not {mode}", code="bad_configuration"
                )
            models[mode] = model
        logger.info("loaded Qwen3-TTS %s on %s (modes: %s)", name, device, ", ".join(sorted(models)))
        return cls(name, models, device)

    def synthesize(self, request: Synthesis, on_progress: Callable[[float], None], cancel: CancelToken) -> Speech:
        import torch

        model = self.models.get(request.mode)
        if model is None:
            raise InvalidInput(
                "mode", f"This worker's Qwen3-TTS checkpoints do {', '.join(sorted(self.modes))}",
                code="unsupported_mode",
            )  # fmt: skip
        language = language_name(request.lang, model.get_supported_languages())
        speaker = None
        if request.mode == "custom_voice":
            speaker = speaker_name(request.voice, model.get_supported_speakers())
        unused: tuple[str, ...] = ()
        if request.mode == "custom_voice" and request.instruct and "0b6" in str(model.model.tts_model_size):
            unused = ("instruct",)  # the 0.6B CustomVoice takes no instruction (the package drops it)
        pieces = chunking.plan(request.text)
        if not pieces:
            raise InvalidInput("text", "text has nothing to say")
        with self._lock:
            prompt = None
            if request.mode == "voice_clone":
                if request.reference is None:  # schema.check_input requires it
                    raise InvalidInput("ref_audio", "ref_audio is required in the voice_clone mode")
                clone = clone_prompt_arguments(request.reference, request.ref_text)
                with torch.inference_mode():
                    prompt = model.create_voice_clone_prompt(**clone)

            def speak(piece: str) -> Any:
                method, arguments = call_arguments(
                    request.mode, piece, language, speaker=speaker, instruct=request.instruct, prompt=prompt
                )
                wavs, rate = getattr(model, method)(**arguments)
                if int(rate) != self.sample_rate:
                    raise HandlerError(f"Qwen3-TTS returned {rate} Hz audio, not {self.sample_rate}")
                return wavs[0]

            audio = chunking.run_calls(pieces, speak, on_progress, cancel)
        audio = chunking.apply_speed(audio, request.speed)
        return Speech(audio, self.sample_rate, speaker, len(pieces), unused)


def load_arguments(device: str, torch: Any) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments: bfloat16 on a GPU, float32 on the CPU; the attention
    kernel from ``SPEECH_ATTENTION`` (e.g. ``flash_attention_2`` where flash-attn is installed)."""
    arguments: dict[str, Any] = {
        "device_map": "cuda:0" if device == "cuda" else device,
        "dtype": torch.bfloat16 if device.startswith("cuda") else torch.float32,
    }
    attention = os.environ.get("SPEECH_ATTENTION", "").strip()
    if attention:
        arguments["attn_implementation"] = attention
    return arguments
