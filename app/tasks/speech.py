"""txt2audio: text to speech in the seeds' three modes (media dialect, design.md §6)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from app.routing.schema import ModelRoute
from app.tasks.common import TaskParams, check_model_limits
from app.tasks.spec import MB, VOICE_FORMATS, FileRule, TaskSpec, Uploads
from app.tasks.validation import FieldErrors

Mode = Literal["custom_voice", "voice_clone", "voice_design"]
AudioFormat = Literal["mp3", "wav", "flac", "opus", "ogg", "aac", "pcm"]
_MODE_FEATURE = {
    "custom_voice": "supports_custom_voice",
    "voice_clone": "supports_voice_clone",
    "voice_design": "supports_voice_design",
}


class Txt2Audio(TaskParams, kw_only=True):
    text: Annotated[str, msgspec.Meta(max_length=100_000)]
    mode: Mode = "custom_voice"
    lang: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    voice: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    speed: Annotated[float, msgspec.Meta(ge=0.1, le=4)] | None = None
    format: AudioFormat | None = None
    sample_rate: Annotated[int, msgspec.Meta(ge=8000, le=48000)] | None = None
    instruct: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    ref_text: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class Txt2AudioPrice(Txt2Audio, kw_only=True):
    """The price call takes ``count_text`` (a character count) instead of ``text``."""

    text: Annotated[str, msgspec.Meta(max_length=100_000)] = ""
    count_text: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None


def _check(params: Txt2Audio, uploads: Uploads, route: ModelRoute) -> FieldErrors:
    errors = check_model_limits(params, route)
    if route.info.features.get(_MODE_FEATURE[params.mode]) is False:
        errors.append(("mode", f"The model does not support the {params.mode} mode."))
    voice = params.voice or route.info.defaults.get("voice")
    if params.mode == "custom_voice" and not voice:
        errors.append(("voice", "The voice field is required in the custom_voice mode."))
    if params.mode == "voice_clone" and not uploads.get("ref_audio"):
        errors.append(("ref_audio", "The ref_audio field is required in the voice_clone mode."))
    if params.mode == "voice_design" and not params.instruct:
        errors.append(("instruct", "The instruct field is required in the voice_design mode."))
    languages = {language.slug: language for language in route.languages}
    lang = params.lang or route.info.defaults.get("lang")
    if params.lang is not None and languages and params.lang not in languages:
        errors.append(("lang", f"The model has no language {params.lang[:32]!r}."))
    elif params.mode == "custom_voice" and params.voice is not None and isinstance(lang, str) and lang in languages:
        voices = {v.slug for v in languages[lang].voices}
        if voices and params.voice not in voices:
            errors.append(("voice", f"The language {lang!r} has no voice {params.voice[:100]!r}."))
    return errors


def _characters(params: Txt2Audio) -> int:
    count = getattr(params, "count_text", None)
    return count if count is not None else len(params.text)


def _quantities(params: Txt2Audio, uploads: Uploads, route: ModelRoute) -> dict[str, float]:
    default_speed = route.info.defaults.get("speed")
    speed = params.speed or (float(default_speed) if isinstance(default_speed, int | float) else 1.0)
    return {"characters": float(_characters(params)), "speed": speed}


def _worker_input(params: Txt2Audio, upstream_model: str, urls: Mapping[str, list[str]]) -> dict[str, Any]:
    job: dict[str, Any] = {"task": "txt2audio", "model": upstream_model, "text": params.text, "mode": params.mode}
    optional = {"lang": params.lang, "voice": params.voice, "speed": params.speed, "format": params.format,
                "sample_rate": params.sample_rate, "instruct": params.instruct, "ref_text": params.ref_text}
    job |= {k: v for k, v in optional.items() if v is not None}
    if urls.get("ref_audio"):
        job["ref_audio"] = urls["ref_audio"][0]
    return job


TXT2AUDIO = TaskSpec(
    "txt2audio", "speech", "txt2audio", Txt2Audio,
    files=(FileRule("ref_audio", VOICE_FORMATS, 10 * MB),),
    check=_check, quantities=_quantities, worker_input=_worker_input,
)
