"""One interface for every speech model family, and the worker's one loaded engine.

A family states which modes it can do before anything loads, so a request for a mode the
configured model cannot do fails at once with a contract error naming ``mode``.

- ``kokoro`` (``engine_kokoro.py``): Kokoro-82M, preset voices (``custom_voice``), CPU or GPU.
- ``chatterbox`` (Resemble AI, ``voice_clone``) and ``qwen3_tts`` (all three modes): declared
  here with their modes; their published packages pin torch 2.6 / transformers 4.57, which
  cannot live beside this image's torch 2.13, so loading them fails with
  ``engine_unavailable`` (handlers/README.md, "Speech worker").
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from handlers.common.cancel import CancelToken
from handlers.common.errors import HandlerError, InvalidInput
from handlers.speech.schema import Mode

if TYPE_CHECKING:
    import numpy as np

    from handlers.speech.reference import Reference

DEFAULT_MODEL = "hexgrad/Kokoro-82M"


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


class SpeechEngine(Protocol):
    name: str
    sample_rate: int
    modes: frozenset[str]

    def synthesize(self, request: Synthesis, on_progress: Callable[[float], None], cancel: CancelToken) -> Speech: ...


@dataclass(frozen=True)
class Family:
    name: str
    modes: frozenset[str]
    sample_rate: int  # native output rate: references are decoded at it
    why_unavailable: str | None = None


FAMILIES: dict[str, Family] = {
    "kokoro": Family("kokoro", frozenset({"custom_voice"}), 24_000),
    "chatterbox": Family(
        "chatterbox",
        frozenset({"voice_clone"}),
        24_000,
        "the chatterbox-tts package pins torch 2.6 and numpy < 2, which this image (torch 2.13) cannot install",
    ),
    "qwen3_tts": Family(
        "qwen3_tts",
        frozenset({"custom_voice", "voice_clone", "voice_design"}),
        24_000,
        "the qwen-tts package pins transformers 4.57 and needs torchaudio, "
        "which this image (torch 2.13) cannot install",
    ),
}


def model_id() -> str:
    return os.environ.get("SPEECH_MODEL", "").strip() or DEFAULT_MODEL


def family_of(name: str) -> Family:
    """The family ``SPEECH_ENGINE`` names, else the one the model id or directory shows."""
    wanted = os.environ.get("SPEECH_ENGINE", "").strip().lower()
    if wanted and wanted != "auto":
        if wanted not in FAMILIES:
            raise HandlerError(f"SPEECH_ENGINE must be auto or one of {', '.join(FAMILIES)}", code="bad_configuration")
        return FAMILIES[wanted]
    lowered = name.lower()
    for key, needle in (("kokoro", "kokoro"), ("chatterbox", "chatterbox"), ("qwen3_tts", "qwen3-tts")):
        if needle in lowered:
            return FAMILIES[key]
    config = Path(name) / "config.json"
    if config.is_file() and "istftnet" in json.loads(config.read_text()):
        return FAMILIES["kokoro"]  # a local Kokoro directory under another name
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
    if family.why_unavailable is not None:
        raise HandlerError(
            f"The {family.name} engine is not available: {family.why_unavailable}", code="engine_unavailable"
        )
    from handlers.speech.engine_kokoro import KokoroEngine

    return KokoroEngine.load(name)


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
