"""One interface for every speech model family, and the worker's one loaded engine.

A family states which modes it can do before anything loads, so a request for a mode the
configured model cannot do fails at once with a contract error naming ``mode``.

- ``kokoro`` (``engine_kokoro.py``): Kokoro-82M, preset voices (``custom_voice``), CPU or GPU.
- ``chatterbox`` (``engine_chatterbox.py``): Resemble AI's Chatterbox (English, multilingual or
  Turbo), ``voice_clone``, through the ``chatterbox-tts`` package.
- ``qwen3_tts`` (``engine_qwen3.py``): Qwen3-TTS through the ``qwen-tts`` package, one
  checkpoint per mode (CustomVoice, Base for cloning, VoiceDesign).

Each family's package pins its own torch stack, so each has its own image (``Dockerfile``,
``Dockerfile.chatterbox``, ``Dockerfile.qwen3``); a family whose package is missing from the
image fails with ``engine_unavailable`` (handlers/README.md, "Speech worker").
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from handlers.common.cancel import CancelToken
from handlers.common.errors import HandlerError, InvalidInput
from handlers.speech.schema import Mode

if TYPE_CHECKING:
    import numpy as np

    from handlers.speech.reference import Reference

DEFAULT_MODEL = "hexgrad/Kokoro-82M"
# The T3 weights of each Chatterbox variant: a local directory holding one is a Chatterbox.
CHATTERBOX_T3_FILES = ("t3_cfg.safetensors", "t3_mtl23ls_v2.safetensors", "t3_turbo_v1.safetensors")


@dataclass(frozen=True)
class Synthesis:
    """What one job asks an engine to say, validated."""

    text: str
    mode: Mode
    lang: str | None
    voice: str | None
    speed: float
    instruct: str | None = None
    reference: Reference | None = None
    ref_text: str | None = None


@dataclass(frozen=True)
class Speech:
    samples: np.ndarray  # mono float32
    sample_rate: int
    voice: str | None  # the preset used, when there is one
    chunks: int  # model calls the text took
    unused: tuple[str, ...] = ()  # fields the mode reads but this model could not use


class SpeechEngine(Protocol):
    name: str
    sample_rate: int
    modes: frozenset[str]

    def synthesize(self, request: Synthesis, on_progress: Callable[[float], None], cancel: CancelToken) -> Speech: ...


# The optional fields each mode reads; others a job sends come back as `ignored`.
MODE_FIELDS: dict[str, tuple[str, ...]] = {
    "custom_voice": (),
    "voice_clone": ("ref_audio", "ref_text"),
    "voice_design": ("instruct",),
}


@dataclass(frozen=True)
class Family:
    name: str
    modes: frozenset[str]
    sample_rate: int  # native output rate: references are decoded at it
    image: str  # the Dockerfile (handlers/speech/) whose image carries the family's package
    reads: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MODE_FIELDS)


FAMILIES: dict[str, Family] = {
    "kokoro": Family("kokoro", frozenset({"custom_voice"}), 24_000, "Dockerfile"),
    "chatterbox": Family("chatterbox", frozenset({"voice_clone"}), 24_000, "Dockerfile.chatterbox"),
    # The most a Qwen3-TTS worker can do; each checkpoint does one mode (family_of narrows it).
    "qwen3_tts": Family(
        "qwen3_tts",
        frozenset({"custom_voice", "voice_clone", "voice_design"}),
        24_000,
        "Dockerfile.qwen3",
        {**MODE_FIELDS, "custom_voice": ("instruct",)},  # the 1.7B CustomVoice takes a style instruction
    ),
}
_NEEDLES = (("kokoro", "kokoro"), ("chatterbox", "chatterbox"), ("qwen3_tts", "qwen3-tts"))


def model_id() -> str:
    return os.environ.get("SPEECH_MODEL", "").strip() or DEFAULT_MODEL


def family_of(name: str) -> Family:
    """The family ``SPEECH_ENGINE`` names, else the one the model id or directory shows.

    A Qwen3-TTS worker names one checkpoint per mode, comma-separated; its family's modes are
    those of the checkpoints named (from their names, or a local directory's config.json).
    """
    wanted = os.environ.get("SPEECH_ENGINE", "").strip().lower()
    if wanted and wanted != "auto":
        if wanted not in FAMILIES:
            raise HandlerError(f"SPEECH_ENGINE must be auto or one of {', '.join(FAMILIES)}", code="bad_configuration")
        family = FAMILIES[wanted]
    else:
        family = FAMILIES[_detect(name)]
    if family.name == "qwen3_tts":
        from handlers.speech.engine_qwen3 import checkpoint_modes

        return replace(family, modes=frozenset(checkpoint_modes(name).values()))
    return family


def _detect(name: str) -> str:
    lowered = name.lower()
    for key, needle in _NEEDLES:
        if needle in lowered:
            return key
    directory = Path(name.split(",")[0].strip())
    config = directory / "config.json"
    if config.is_file():
        settings = json.loads(config.read_text())
        if "istftnet" in settings:
            return "kokoro"  # a local Kokoro directory under another name
        if settings.get("model_type") == "qwen3_tts":
            return "qwen3_tts"
    if any((directory / weights).is_file() for weights in CHATTERBOX_T3_FILES):
        return "chatterbox"
    raise HandlerError(
        "SPEECH_MODEL is no known speech family; set SPEECH_ENGINE to kokoro, chatterbox or qwen3_tts",
        code="bad_configuration",
    )


def check_mode(family: Family, mode: str) -> None:
    if mode not in family.modes:
        raise InvalidInput(
            "mode",
            f"This model ({family.name}) does not do {mode}; it does {', '.join(sorted(family.modes))}",
            code="unsupported_mode",
        )


def _load(name: str, family: Family) -> SpeechEngine:
    # Each family's package is imported only here, when that family is the one configured:
    # the images carry one family's stack each (their torch pins conflict).
    if family.name == "chatterbox":
        from handlers.speech.engine_chatterbox import ChatterboxEngine

        return ChatterboxEngine.load(name)
    if family.name == "qwen3_tts":
        from handlers.speech.engine_qwen3 import Qwen3Engine

        return Qwen3Engine.load(name)
    from handlers.speech.engine_kokoro import KokoroEngine

    return KokoroEngine.load(name)


def unavailable(family: str, package: str, exc: ImportError) -> HandlerError:
    """The error when a family's package is missing: this image is not that family's."""
    image = FAMILIES[family].image
    return HandlerError(
        f"The {family} engine needs the {package} package ({type(exc).__name__}: {exc}); "
        f"run it from the image built with handlers/speech/{image}",
        code="engine_unavailable",
    )


_engine: SpeechEngine | None = None
_engine_lock = threading.Lock()


def get_engine() -> SpeechEngine:
    """The worker's engine, loaded on first use (the lock stops two jobs loading it twice)."""
    global _engine
    name = model_id()
    with _engine_lock:
        if _engine is None or _engine.name != name:
            _engine = None  # drop the old model before loading another into memory
            _engine = _load(name, family_of(name))
        return _engine
