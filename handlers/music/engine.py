"""One interface for every music model family, and the worker's one loaded engine.

- ``acestep`` (``engine_acestep.py``): ACE-Step 1.5 through diffusers' ``AceStepPipeline``
  (Qwen3 text encoder, flow-matching DiT, Oobleck VAE): captions, lyrics with section tags,
  bpm/key/time-signature metadata, a reference clip for timbre; 48 kHz stereo; GPU.
- ``musicgen`` (``engine_musicgen.py``): Meta's MusicGen through transformers (T5 text
  encoder, codebook decoder, EnCodec): captions only, 32 kHz; small enough for a CPU, so
  it is what ``serve --local`` runs.

A family states what it can do before anything loads, so a request it cannot serve (lyrics
on MusicGen, a reference clip on a model without timbre conditioning) fails at once with a
contract error naming the field.
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

if TYPE_CHECKING:
    import numpy as np

    from handlers.music.schema import MusicInput

DEFAULT_MODEL = "ACE-Step/acestep-v15-xl-turbo-diffusers"


@dataclass(frozen=True)
class Composition:
    """What one job asks an engine to make, validated and with defaults filled."""

    caption: str
    duration: float
    seed: int
    steps: int | None  # None: the model's own default
    guidance_scale: float | None
    lyrics: str  # "" when instrumental
    bpm: int | None
    keyscale: str | None
    timesignature: int | None
    vocal_language: str
    reference: np.ndarray | None = None  # (channels, n) float32 at the engine's rate


@dataclass(frozen=True)
class Music:
    samples: np.ndarray  # float32 (channels, n) in [-1, 1], exactly the duration asked
    sample_rate: int
    steps: int  # model calls made: diffusion steps, or generated codec frames
    ignored: tuple[str, ...] = ()  # sent, but the loaded checkpoint has no use for them


class MusicEngine(Protocol):
    name: str
    family: Family
    sample_rate: int
    channels: int

    def compose(self, request: Composition, on_progress: Callable[[float], None], cancel: CancelToken) -> Music: ...


@dataclass(frozen=True)
class Family:
    name: str
    lyrics: bool  # sings lyrics
    reference: bool  # takes a reference clip
    steps: bool  # inference_steps means something
    default_steps: int | None = None


FAMILIES: dict[str, Family] = {
    "acestep": Family("acestep", lyrics=True, reference=True, steps=True, default_steps=8),
    "musicgen": Family("musicgen", lyrics=False, reference=False, steps=False),
}


def model_id() -> str:
    return os.environ.get("MUSIC_MODEL", "").strip() or DEFAULT_MODEL


def family_of(name: str) -> Family:
    """The family ``MUSIC_ENGINE`` names, else the one the model id or directory shows."""
    wanted = os.environ.get("MUSIC_ENGINE", "").strip().lower()
    if wanted and wanted != "auto":
        if wanted not in FAMILIES:
            raise HandlerError(f"MUSIC_ENGINE must be auto or one of {', '.join(FAMILIES)}", code="bad_configuration")
        return FAMILIES[wanted]
    lowered = name.lower()
    for key, needles in (("acestep", ("ace-step", "acestep")), ("musicgen", ("musicgen",))):
        if any(needle in lowered for needle in needles):
            return FAMILIES[key]
    directory = Path(name)
    index = directory / "model_index.json"
    if index.is_file() and json.loads(index.read_text()).get("_class_name") == "AceStepPipeline":
        return FAMILIES["acestep"]
    config = directory / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("model_type") == "musicgen":
        return FAMILIES["musicgen"]
    raise HandlerError(
        "MUSIC_MODEL is no known music family; set MUSIC_ENGINE to acestep or musicgen", code="bad_configuration"
    )


def check_request(family: Family, params: MusicInput) -> list[str]:
    """Refuse what the family cannot do (naming the field); return the sent fields it ignores."""
    if params.sung and not family.lyrics:
        raise InvalidInput(
            "lyrics",
            f"This model ({family.name}) makes instrumental music only; send no lyrics or [Instrumental]",
            code="unsupported_field",
        )
    if params.reference_audio is not None and not family.reference:
        raise InvalidInput(
            "reference_audio", f"This model ({family.name}) does not take a reference clip", code="unsupported_field"
        )
    ignored = []
    if params.inference_steps is not None and not family.steps:
        ignored.append("inference_steps")
    if params.vocal_language is not None and not family.lyrics:
        ignored.append("vocal_language")
    return ignored


def _load(name: str, family: Family) -> MusicEngine:
    if family.name == "musicgen":
        from handlers.music.engine_musicgen import MusicgenEngine

        return MusicgenEngine.load(name)
    from handlers.music.engine_acestep import AceStepEngine

    return AceStepEngine.load(name)


_engine: MusicEngine | None = None
_engine_lock = threading.Lock()


def get_engine() -> MusicEngine:
    """The worker's engine, loaded on first use (the lock stops two jobs loading it twice)."""
    global _engine
    name = model_id()
    with _engine_lock:
        if _engine is None or _engine.name != name:
            _engine = None  # drop the old model before loading another into memory
            _engine = _load(name, family_of(name))
        return _engine


def choose_device() -> str:
    import torch

    wanted = os.environ.get("MUSIC_DEVICE", "").strip().lower()
    if wanted and wanted != "auto":
        return wanted
    return "cuda" if torch.cuda.is_available() else "cpu"


def seeded_generator(seed: int) -> object:
    """A CPU generator: the same seed gives the same noise on any device."""
    import torch

    return torch.Generator("cpu").manual_seed(seed)
