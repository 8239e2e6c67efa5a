"""txt2video, img2video, aud2video: LTX class video generation (media dialect, design.md §6)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from app.routing.schema import ModelRoute
from app.tasks.common import Guidance, Prompt, Seed, Side, Steps, TaskParams, check_model_limits, resolved_seed
from app.tasks.spec import CONDITIONING_AUDIO_FORMATS, IMAGE_FORMATS, MB, FileRule, TaskSpec, Uploads
from app.tasks.validation import FieldErrors

Frames = Annotated[int, msgspec.Meta(ge=1, le=2000)]
Fps = Annotated[int, msgspec.Meta(ge=1, le=120)]
_FIRST = FileRule("first_frame_image", IMAGE_FORMATS, 10 * MB)
_LAST = FileRule("last_frame_image", IMAGE_FORMATS, 10 * MB)


class Txt2Video(TaskParams, kw_only=True):
    prompt: Prompt
    width: Side | None = None
    height: Side | None = None
    frames: Frames | None = None
    fps: Fps | None = None
    steps: Steps | None = None
    seed: Seed | None = None
    guidance: Guidance | None = None
    negative_prompt: Prompt | None = None


def _number(route: ModelRoute, name: str, given: float | None, fallback: float) -> float:
    if given is not None:
        return float(given)
    default = route.info.defaults.get(name)
    return float(default) if isinstance(default, int | float) and not isinstance(default, bool) else fallback


def _check(params: Txt2Video, uploads: Uploads, route: ModelRoute) -> FieldErrors:
    last = uploads.get("last_frame_image") or None
    return check_model_limits(params, route, last_frame_image=last)


def _check_image(params: Txt2Video, uploads: Uploads, route: ModelRoute) -> FieldErrors:
    errors = _check(params, uploads, route)
    if not uploads.get("first_frame_image"):
        errors.append(("first_frame_image", "The first_frame_image field is required."))
    return errors


def _check_audio(params: Txt2Video, uploads: Uploads, route: ModelRoute) -> FieldErrors:
    errors = _check(params, uploads, route)
    if not uploads.get("audio"):
        errors.append(("audio", "The audio field is required."))
    return errors


def _quantities(params: Txt2Video, uploads: Uploads, route: ModelRoute) -> dict[str, float]:
    frames = _number(route, "frames", params.frames, 97)
    fps = _number(route, "fps", params.fps, 24)
    width = _number(route, "width", params.width, 768)
    height = _number(route, "height", params.height, 512)
    steps = _number(route, "steps", params.steps, 1)
    return {"seconds": frames / fps, "frames": frames, "pixels": width * height, "steps": steps}


def _worker_input(task: str) -> Any:
    def build(params: Txt2Video, upstream_model: str, urls: Mapping[str, list[str]]) -> dict[str, Any]:
        job: dict[str, Any] = {"task": task, "model": upstream_model, "prompt": params.prompt,
                               "seed": resolved_seed(params.seed)}
        optional = {"width": params.width, "height": params.height, "frames": params.frames, "fps": params.fps,
                    "steps": params.steps, "guidance": params.guidance, "negative_prompt": params.negative_prompt}
        job |= {k: v for k, v in optional.items() if v is not None}
        for field in ("first_frame_image", "last_frame_image", "audio"):
            if urls.get(field):
                job[field] = urls[field][0]
        return job

    return build


TXT2VIDEO = TaskSpec(
    "txt2video", "video", "txt2video", Txt2Video,
    check=_check, quantities=_quantities, worker_input=_worker_input("txt2video"),
)
IMG2VIDEO = TaskSpec(
    "img2video", "video", "img2video", Txt2Video, files=(_FIRST, _LAST),
    check=_check_image, quantities=_quantities, worker_input=_worker_input("img2video"),
)
AUD2VIDEO = TaskSpec(
    "aud2video", "video", "aud2video", Txt2Video,
    files=(FileRule("audio", CONDITIONING_AUDIO_FORMATS, 20 * MB), _FIRST, _LAST),
    check=_check_audio, quantities=_quantities, worker_input=_worker_input("aud2video"),
)
