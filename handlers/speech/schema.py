"""The speech job input (media dialect, ``task: txt2audio``) and the limits an operator can tune.

Structural checks live in the Struct so ``parse_input`` names the field; checks whose bounds
come from the environment or from the output format live in ``check_input``. Both run before
any model is touched, so a bad request fails in milliseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from handlers.common.audio import FLAC, MP3, MP3_RATES, WAV, AudioFormat
from handlers.common.errors import InvalidInput

Mode = Literal["custom_voice", "voice_clone", "voice_design"]
MIN_SPEED, MAX_SPEED = 0.5, 2.0
MIN_REF_S, MAX_REF_S = 3.0, 10.0  # the seeds' reference clip length for voice cloning


class SpeechInput(msgspec.Struct, forbid_unknown_fields=True):
    """One job's ``input``, as ``app/tasks/speech.py`` sends it. Unknown keys are rejected."""

    text: str
    task: Literal["txt2audio"] = "txt2audio"
    model: str | None = None  # the upstream model id; a single-model worker only echoes it
    mode: Mode = "custom_voice"
    lang: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    voice: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    speed: float | None = None
    format: str | None = None
    sample_rate: int | None = None
    instruct: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    ref_text: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    ref_audio: str | None = None  # a URL (the gateway stages uploads and signs a link)


# The formats OpenAI's /v1/audio/speech and the native txt2audio name; MP3, WAV and FLAC are
# shared with the music worker (handlers/common/audio.py).
_AAC_RATES = MP3_RATES
# Ogg Opus always decodes at 48 kHz (RFC 7845): other rates would only be a header note.
OPUS = AudioFormat("ogg", "libopus", "audio/ogg", frozenset({48_000}), fixed_rate=48_000, extension="ogg")
FORMATS: dict[str, AudioFormat] = {
    "mp3": MP3,
    "wav": WAV,
    "flac": FLAC,
    "opus": OPUS,  # OpenAI's `opus` is Ogg Opus
    "ogg": OPUS,
    "aac": AudioFormat("adts", "aac", "audio/aac", _AAC_RATES),
    "pcm": AudioFormat(None, "pcm_s16le", "audio/pcm", None),  # raw 16-bit little-endian mono, as OpenAI's
}
MIN_RATE, MAX_RATE = 8000, 48000


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


@dataclass(frozen=True)
class Limits:
    """Operator-tunable bounds, read per job."""

    max_text: int = 5000  # routing.yaml's max_text for every speech model
    max_inline_bytes: int = 8 * 1024 * 1024
    default_format: str = "mp3"

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            max_text=_env_int("SPEECH_MAX_TEXT", cls.max_text),
            max_inline_bytes=_env_int("SPEECH_MAX_INLINE_BYTES", cls.max_inline_bytes),
            default_format=os.environ.get("SPEECH_DEFAULT_FORMAT", "").strip().lower() or cls.default_format,
        )


def check_input(params: SpeechInput, limits: Limits) -> None:
    """Checks the Struct cannot state; raises ``InvalidInput`` naming the field."""
    if not params.text.strip():
        raise InvalidInput("text", "text must contain something to say")
    if len(params.text) > limits.max_text:
        raise InvalidInput("text", f"text must be at most {limits.max_text} characters")
    if params.speed is not None and not MIN_SPEED <= params.speed <= MAX_SPEED:
        raise InvalidInput("speed", f"speed must be between {MIN_SPEED} and {MAX_SPEED}")
    fmt = output_format(params.format, limits)
    if params.sample_rate is not None:
        rates = FORMATS[fmt].rates
        if not MIN_RATE <= params.sample_rate <= MAX_RATE:
            raise InvalidInput("sample_rate", f"sample_rate must be between {MIN_RATE} and {MAX_RATE}")
        if rates is not None and params.sample_rate not in rates:
            allowed = ", ".join(str(rate) for rate in sorted(rates))
            raise InvalidInput("sample_rate", f"sample_rate for {fmt} must be one of {allowed}")
    if params.mode == "voice_clone" and not params.ref_audio:
        raise InvalidInput("ref_audio", "ref_audio is required in the voice_clone mode")
    if params.mode == "voice_design" and not (params.instruct or "").strip():
        raise InvalidInput("instruct", "instruct is required in the voice_design mode")


def output_rate(params: SpeechInput, fmt: str, native_rate: int) -> int:
    """The rate the file is encoded at: the one asked, else the format's own, else the model's."""
    return params.sample_rate or FORMATS[fmt].fixed_rate or native_rate


def output_format(value: str | None, limits: Limits) -> str:
    name = (value or limits.default_format).strip().lower()
    if name not in FORMATS:
        raise InvalidInput("format", f"format must be one of {', '.join(FORMATS)}")
    return name
