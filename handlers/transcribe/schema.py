"""The transcribe job input, in worker-faster_whisper's dialect.

Field names, types and defaults are the stock worker's (runpod-workers/worker-faster_whisper
``rp_schema.py``), so a client of a stock endpoint works unchanged. Unknown keys are
rejected, as the stock validator does. Every check here runs before the model is touched.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from handlers.common.errors import InvalidInput
from handlers.common.validation import parse_input

TextFormat = Literal["plain_text", "formatted_text", "srt", "vtt"]
MAX_PROMPT_CHARS = 10_000  # whisper keeps only the last 223 prompt tokens anyway


class TranscribeInput(msgspec.Struct, forbid_unknown_fields=True):
    """One job's ``input``. Exactly one of ``audio`` (URL), ``audio_base64`` and ``source_url``
    (a platform link, downloaded with yt-dlp)."""

    audio: str | None = None
    audio_base64: str | None = None
    source_url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)] | None = None
    include_ts: bool = False  # `[start --> end]` before each line of a plain_text transcription
    model: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    transcription: TextFormat = "plain_text"  # format of the `transcription` string
    translate: bool = False  # also translate to English into `translation`
    translation: TextFormat = "plain_text"
    language: str | None = None  # None (or "auto"): detect
    temperature: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0
    best_of: Annotated[int, msgspec.Meta(ge=1, le=10)] = 5
    beam_size: Annotated[int, msgspec.Meta(ge=1, le=10)] = 5
    patience: Annotated[float, msgspec.Meta(gt=0, le=10)] = 1.0
    length_penalty: Annotated[float, msgspec.Meta(ge=0, le=10)] | None = None  # None: faster-whisper's 1
    suppress_tokens: str | list[int] = "-1"  # "-1" = the model's non-speech symbols
    initial_prompt: Annotated[str, msgspec.Meta(max_length=MAX_PROMPT_CHARS)] | None = None
    condition_on_previous_text: bool = True
    temperature_increment_on_fallback: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = 0.2
    compression_ratio_threshold: float | None = 2.4
    logprob_threshold: float | None = -1.0
    no_speech_threshold: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = 0.6
    enable_vad: bool = False
    word_timestamps: bool = False


def parse(raw: object) -> TranscribeInput:
    """Validate a job's input; ``InvalidInput`` names the offending field."""
    params = parse_input(raw, TranscribeInput)
    given = [name for name in ("audio", "audio_base64", "source_url") if getattr(params, name) is not None]
    if len(given) > 1:
        both = " and ".join(given)
        param = "source_url" if "source_url" in given else "audio"
        raise InvalidInput(param, f"Send one of audio (a URL), audio_base64 or source_url, not {both}")
    if not given or not getattr(params, given[0]):
        raise InvalidInput("audio", "audio (a URL), audio_base64 or source_url is required", code="missing_required")
    params.language = normalise_language(params.language)
    suppress_token_ids(params.suppress_tokens)  # validated now, used later
    return params


def normalise_language(value: str | None) -> str | None:
    """An ISO-639-1 code whisper knows (lower case), or None for detection."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # lazy: keeps schema import light

    code = (value or "").strip().lower()
    if code in ("", "auto", "none", "null"):
        return None
    if code not in _LANGUAGE_CODES:
        raise InvalidInput(
            "language", f"language must be an ISO-639-1 code whisper supports (for example en, de, ja), not {value!r}"
        )
    return code


def suppress_token_ids(value: str | list[int]) -> list[int]:
    """``"-1"`` / ``"-1,50257"`` (the stock worker's string form) or a list of ints."""
    if isinstance(value, list):
        return value
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise InvalidInput("suppress_tokens", 'suppress_tokens must be comma-separated token ids, e.g. "-1"') from None


def fallback_temperatures(start: float, increment: float | None) -> tuple[float, ...]:
    """``start``, then ``start + increment``... up to 1.0, as the stock worker decodes on fallback."""
    if increment is None:
        return (start,)
    steps = int((1.0 - start) / increment + 1e-6)
    return tuple(round(start + i * increment, 6) for i in range(steps + 1))
