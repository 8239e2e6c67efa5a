"""The video job input (media dialect, design.md §6) and the limits an operator sets by env.

Structural checks (types, unknown keys, fixed ranges) live in the Struct so ``parse_input``
names the field; bounds that come from the environment live in ``check_limits``. Both run
before the model is touched, so a bad request fails in milliseconds. The gateway already
enforces each model's published limits; these are the worker's own, for direct callers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from handlers.common.errors import InvalidInput

Task = Literal["txt2video", "img2video", "aud2video"]
MAX_SEED = 2**63 - 1
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]


class VideoInput(msgspec.Struct, forbid_unknown_fields=True):
    """One job's ``input``: what ``worker_input`` in app/tasks/video.py sends."""

    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
    task: Task = "txt2video"
    model: Annotated[str, msgspec.Meta(max_length=200)] | None = None  # echoed; one model per worker
    seed: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEED)] | None = None
    width: Annotated[int, msgspec.Meta(ge=1)] | None = None
    height: Annotated[int, msgspec.Meta(ge=1)] | None = None
    frames: Annotated[int, msgspec.Meta(ge=1)] | None = None
    fps: Annotated[int, msgspec.Meta(ge=1)] | None = None
    steps: Annotated[int, msgspec.Meta(ge=1)] | None = None
    guidance: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    negative_prompt: Annotated[str, msgspec.Meta(max_length=20_000)] | None = None
    first_frame_image: Url | None = None
    last_frame_image: Url | None = None
    audio: Url | None = None


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        from handlers.common.errors import HandlerError

        raise HandlerError(f"{name} must be an integer", code="bad_configuration") from None


@dataclass(frozen=True)
class Limits:
    """Operator bounds, read per job so a changed env applies without a reload."""

    min_side: int = 64
    max_side: int = 1920
    min_frames: int = 1
    max_frames: int = 257
    min_fps: int = 1
    max_fps: int = 60
    max_steps: int = 50
    max_inline_bytes: int = 8 * 1024 * 1024
    default_frames: int = 97
    default_fps: int = 24

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            min_side=_env_int("VIDEO_MIN_SIDE", cls.min_side),
            max_side=_env_int("VIDEO_MAX_SIDE", cls.max_side),
            min_frames=_env_int("VIDEO_MIN_FRAMES", cls.min_frames),
            max_frames=_env_int("VIDEO_MAX_FRAMES", cls.max_frames),
            min_fps=_env_int("VIDEO_MIN_FPS", cls.min_fps),
            max_fps=_env_int("VIDEO_MAX_FPS", cls.max_fps),
            max_steps=_env_int("VIDEO_MAX_STEPS", cls.max_steps),
            max_inline_bytes=_env_int("VIDEO_MAX_INLINE_BYTES", cls.max_inline_bytes),
            default_frames=_env_int("VIDEO_DEFAULT_FRAMES", cls.default_frames),
            default_fps=_env_int("VIDEO_DEFAULT_FPS", cls.default_fps),
        )


def _between(name: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidInput(name, f"The {name} must be between {low} and {high}.")


def check(params: VideoInput, limits: Limits) -> None:
    """Env-bound ranges and the fields each task needs; raises ``InvalidInput`` naming the field."""
    _between("width", params.width, limits.min_side, limits.max_side)
    _between("height", params.height, limits.min_side, limits.max_side)
    _between("frames", params.frames, limits.min_frames, limits.max_frames)
    _between("fps", params.fps, limits.min_fps, limits.max_fps)
    _between("steps", params.steps, 1, limits.max_steps)
    if params.task == "img2video" and not params.first_frame_image:
        raise InvalidInput("first_frame_image", "The first_frame_image field is required.", code="missing_required")
    if params.task == "aud2video" and not params.audio:
        raise InvalidInput("audio", "The audio field is required.", code="missing_required")
    if params.task != "aud2video" and params.audio:
        raise InvalidInput("audio", f"The audio field is not used by {params.task}.")
    if params.task == "txt2video" and (params.first_frame_image or params.last_frame_image):
        field = "first_frame_image" if params.first_frame_image else "last_frame_image"
        raise InvalidInput(field, f"The {field} field is not used by txt2video; use img2video.")
