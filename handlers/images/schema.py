"""The images job input (worker-sdxl dialect) and the limits an operator can tune by env.

Structural checks (types, unknown keys, fixed ranges) live in the Struct so ``parse_input``
names the field; checks whose bounds come from the environment live in ``check_limits``.
Both run before the model is touched, so a bad request fails in milliseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from handlers.common.errors import InvalidInput

MAX_IMAGES = 8
MAX_SEED = 2**63 - 1  # the gateway accepts the same range; seed + i still fits torch's u64
FORMATS: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_FORMAT_ALIASES = {"jpg": "jpeg"}


MAX_INPUT_IMAGES = 16  # the gateway's images[] limit
Prompt = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
ImageUrl = Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]  # URLs; a data URI is refused by media


class Lora(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    weight: float | None = None


class ImagesInput(msgspec.Struct, forbid_unknown_fields=True):
    """One txt2img job's ``input``. Unknown keys are rejected, as stock workers do."""

    prompt: Prompt
    task: Literal["txt2img"] | None = None
    negative_prompt: str | None = None
    width: int | None = None
    height: int | None = None
    num_images: Annotated[int, msgspec.Meta(ge=1, le=MAX_IMAGES)] | None = None
    seed: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEED)] | None = None
    num_inference_steps: Annotated[int, msgspec.Meta(ge=1)] | None = None
    guidance_scale: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    model: str | None = None  # the upstream model id; a single-model worker only echoes it
    output_format: str | None = None
    loras: list[Lora] | None = None  # accepted so the gateway's shape parses; refused when not empty


class EditInput(ImagesInput, forbid_unknown_fields=True):
    """``task: img2img``: the txt2img fields plus the picture(s) to edit and ``strength``."""

    task: Literal["img2img"] | None = None  # type: ignore[assignment]  # the same key, another value
    image: ImageUrl | None = None
    images: Annotated[list[ImageUrl], msgspec.Meta(min_length=1, max_length=MAX_INPUT_IMAGES)] | None = None
    strength: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None


class RemoveBackgroundInput(msgspec.Struct, forbid_unknown_fields=True):
    """``task: img-rmbg``: one picture in, the same picture with a transparent background out."""

    image: ImageUrl
    task: Literal["img-rmbg"] | None = None
    model: str | None = None
    output_format: str | None = None  # png or webp: both keep the alpha channel


class UpscaleInput(msgspec.Struct, forbid_unknown_fields=True):
    """``task: img-upscale``: one picture in, ``scale`` times its width and height out."""

    image: ImageUrl
    task: Literal["img-upscale"] | None = None
    scale: Literal[2, 4] | None = None  # default: the model's own factor
    model: str | None = None
    output_format: str | None = None


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _env_float(name: str) -> float | None:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else None


@dataclass(frozen=True)
class Limits:
    """Operator-tunable bounds, read per job so a changed env takes effect without a reload."""

    min_side: int = 64
    max_side: int = 2048
    max_steps: int = 100
    max_inline_bytes: int = 8 * 1024 * 1024
    default_steps: int | None = None  # None: per model family (see engine.default_steps)
    default_guidance: float | None = None  # None: per model family
    true_cfg_scale: float = 4.0  # Flux-style pipelines: CFG strength when a negative prompt is sent

    @classmethod
    def from_env(cls) -> Limits:
        steps = _env_int("IMAGES_DEFAULT_STEPS", 0)
        true_cfg = _env_float("IMAGES_TRUE_CFG_SCALE")
        return cls(
            min_side=_env_int("IMAGES_MIN_SIDE", cls.min_side),
            max_side=_env_int("IMAGES_MAX_SIDE", cls.max_side),
            max_steps=_env_int("IMAGES_MAX_STEPS", cls.max_steps),
            max_inline_bytes=_env_int("IMAGES_MAX_INLINE_BYTES", cls.max_inline_bytes),
            default_steps=steps or None,
            default_guidance=_env_float("IMAGES_DEFAULT_GUIDANCE"),
            true_cfg_scale=cls.true_cfg_scale if true_cfg is None else true_cfg,
        )


def output_format(value: str | None) -> str:
    """Normalise ``output_format`` (default png; ``jpg`` means jpeg)."""
    if value is None:
        return "png"
    name = _FORMAT_ALIASES.get(value.strip().lower(), value.strip().lower())
    if name not in FORMATS:
        raise InvalidInput("output_format", f"output_format must be one of {', '.join(FORMATS)}")
    return name


def check_limits(params: ImagesInput, limits: Limits) -> None:
    """Range checks whose bounds come from the environment; raises ``InvalidInput``."""
    for name in ("width", "height"):
        value = getattr(params, name)
        if value is not None and not limits.min_side <= value <= limits.max_side:
            raise InvalidInput(name, f"{name} must be between {limits.min_side} and {limits.max_side}")
    steps = params.num_inference_steps
    if steps is not None and steps > limits.max_steps:
        raise InvalidInput("num_inference_steps", f"num_inference_steps must be at most {limits.max_steps}")
    output_format(params.output_format)
    if params.loras:
        # The gateway only forwards LoRAs a route offers; this worker cannot apply any, and an
        # image made without the asked-for LoRA must not pass for one made with it.
        raise InvalidInput("loras", "This worker does not load LoRAs", code="unsupported_parameter")


def alpha_format(value: str | None) -> str:
    """``output_format`` for a task whose result has an alpha channel: png (default) or webp."""
    fmt = output_format(value)
    if fmt == "jpeg":
        raise InvalidInput("output_format", "output_format must be png or webp: jpeg has no transparency")
    return fmt
