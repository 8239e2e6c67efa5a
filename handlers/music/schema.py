"""The music job input (media dialect, ``task: txt2music``) and the limits an operator can tune.

Structural checks live in the Struct so ``parse_input`` names the field; checks whose bounds
come from the environment live in ``check_input``. Both run before any model is touched, so
a bad request fails in milliseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from handlers.common.audio import FLAC, MP3, WAV, AudioFormat
from handlers.common.errors import InvalidInput

FORMATS: dict[str, AudioFormat] = {"mp3": MP3, "wav": WAV, "flac": FLAC}
MIN_DURATION_S, MAX_DURATION_S = 10.0, 600.0  # the seeds' range for every music model
MAX_STEPS = 200
MIN_BPM, MAX_BPM = 30, 300
# The seeds' instrumental marker: the same as no lyrics at all.
INSTRUMENTAL = "[instrumental]"


class MusicInput(msgspec.Struct, forbid_unknown_fields=True):
    """One job's ``input``, as ``app/tasks/music.py`` sends it. Unknown keys are rejected."""

    caption: Annotated[str, msgspec.Meta(max_length=2000)]
    duration: float
    task: Literal["txt2music"] = "txt2music"
    model: str | None = None  # the upstream model id; a single-model worker only echoes it
    inference_steps: int | None = None
    guidance_scale: Annotated[float, msgspec.Meta(ge=0, le=20)] | None = None
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None = None
    format: str | None = None
    lyrics: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None
    bpm: int | None = None
    keyscale: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    timesignature: Literal[2, 3, 4, 6] | None = None  # 2/4, 3/4, 4/4 and 6/8
    vocal_language: Annotated[str, msgspec.Meta(max_length=16)] | None = None
    reference_audio: str | None = None  # a URL (the gateway stages uploads and signs a link)

    @property
    def sung(self) -> bool:
        """Whether the lyrics ask for vocals (empty and ``[Instrumental]`` do not)."""
        return bool(self.lyrics and self.lyrics.strip() and self.lyrics.strip().lower() != INSTRUMENTAL)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


@dataclass(frozen=True)
class Limits:
    """Operator-tunable bounds, read per job."""

    min_duration: float = MIN_DURATION_S
    max_duration: float = MAX_DURATION_S
    max_steps: int = MAX_STEPS
    max_inline_bytes: int = 8 * 1024 * 1024
    default_format: str = "mp3"
    max_reference_s: float = MAX_DURATION_S

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            min_duration=_env_float("MUSIC_MIN_DURATION", cls.min_duration),
            max_duration=_env_float("MUSIC_MAX_DURATION", cls.max_duration),
            max_steps=int(_env_float("MUSIC_MAX_STEPS", cls.max_steps)),
            max_inline_bytes=int(_env_float("MUSIC_MAX_INLINE_BYTES", cls.max_inline_bytes)),
            default_format=os.environ.get("MUSIC_DEFAULT_FORMAT", "").strip().lower() or cls.default_format,
            max_reference_s=_env_float("MUSIC_MAX_REFERENCE_S", cls.max_reference_s),
        )


def check_input(params: MusicInput, limits: Limits) -> None:
    """Checks the Struct cannot state; raises ``InvalidInput`` naming the field."""
    if not params.caption.strip():
        raise InvalidInput("caption", "caption must describe the music (style, genre, mood)")
    if not limits.min_duration <= params.duration <= limits.max_duration:
        raise InvalidInput(
            "duration", f"duration must be between {limits.min_duration:g} and {limits.max_duration:g} seconds"
        )
    if params.inference_steps is not None and not 1 <= params.inference_steps <= limits.max_steps:
        raise InvalidInput("inference_steps", f"inference_steps must be between 1 and {limits.max_steps}")
    if params.bpm is not None and not MIN_BPM <= params.bpm <= MAX_BPM:
        raise InvalidInput("bpm", f"bpm must be between {MIN_BPM} and {MAX_BPM}")
    output_format(params.format, limits)
    if params.reference_audio is not None and not params.reference_audio.strip():
        raise InvalidInput("reference_audio", "reference_audio must be a URL")


def output_format(value: str | None, limits: Limits) -> str:
    name = (value or limits.default_format).strip().lower()
    if name not in FORMATS:
        raise InvalidInput("format", f"format must be one of {', '.join(FORMATS)}")
    return name
