"""txt2music: ACE-Step class text to music (media dialect, design.md §6)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from app.routing.schema import ModelRoute
from app.tasks.common import Seed, TaskParams, check_model_limits, resolved_seed
from app.tasks.spec import MB, VOICE_FORMATS, FileRule, TaskSpec, Uploads
from app.tasks.validation import FieldErrors


class Txt2Music(TaskParams, kw_only=True):
    caption: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    duration: Annotated[float, msgspec.Meta(ge=10, le=600)]
    inference_steps: Annotated[int, msgspec.Meta(ge=1, le=200)] | None = None
    guidance_scale: Annotated[float, msgspec.Meta(ge=0, le=20)] | None = None
    seed: Seed | None = None
    format: Literal["wav", "mp3", "flac"] | None = None
    lyrics: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None
    bpm: Annotated[int, msgspec.Meta(ge=30, le=300)] | None = None
    keyscale: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    timesignature: Literal[2, 3, 4, 6] | None = None
    vocal_language: Annotated[str, msgspec.Meta(max_length=16)] | None = None


class Txt2MusicPrice(Txt2Music, kw_only=True):
    caption: Annotated[str, msgspec.Meta(max_length=2000)] = ""


def _steps(params: Txt2Music, route: ModelRoute) -> int:
    default = route.info.defaults.get("inference_steps")
    return params.inference_steps or (int(default) if isinstance(default, int | float) else 8)


def _check(params: Txt2Music, uploads: Uploads, route: ModelRoute) -> FieldErrors:
    return check_model_limits(params, route)


def _quantities(params: Txt2Music, uploads: Uploads, route: ModelRoute) -> dict[str, float]:
    return {"seconds": params.duration, "inference_steps": float(_steps(params, route))}


def _worker_input(params: Txt2Music, upstream_model: str, urls: Mapping[str, list[str]]) -> dict[str, Any]:
    job: dict[str, Any] = {"task": "txt2music", "model": upstream_model, "caption": params.caption,
                           "duration": params.duration, "seed": resolved_seed(params.seed)}
    optional = {"inference_steps": params.inference_steps, "guidance_scale": params.guidance_scale,
                "format": params.format, "lyrics": params.lyrics, "bpm": params.bpm, "keyscale": params.keyscale,
                "timesignature": params.timesignature, "vocal_language": params.vocal_language}
    job |= {k: v for k, v in optional.items() if v is not None}
    if urls.get("reference_audio"):
        job["reference_audio"] = urls["reference_audio"][0]
    return job


TXT2MUSIC = TaskSpec(
    "txt2music", "music", "txt2music", Txt2Music,
    files=(FileRule("reference_audio", VOICE_FORMATS, 10 * MB),),
    check=_check, quantities=_quantities, worker_input=_worker_input,
)
