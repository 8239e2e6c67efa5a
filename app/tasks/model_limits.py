"""A request's parameters checked against what its model publishes in ``info`` (reference §4.1.4).

The same ``info`` drives the models catalogue and this check, so a client that reads the
catalogue never sends what the gateway refuses, and a worker never sees ``width: 100000``.
Messages follow the seeds' Errors page ("The width must be between 64 and 2048.").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.routing.schema import ModelInfo

FieldErrors = list[tuple[str, str]]

# A limit that bounds something other than the field of the same name.
_MEASURED: dict[str, tuple[str, str]] = {
    "text": ("text", "characters"),  # min_text / max_text: length of `text`
    "input_images": ("images", "images"),  # max_input_images: how many input images
}
# Feature flags that switch a field off, and the value that means "not used".
_SWITCHES = {
    "supports_steps": ("steps", None),
    "supports_guidance": ("guidance", 0),
    "supports_negative_prompt": ("negative_prompt", None),
    "supports_custom_output_size": ("width", None),
    "supports_last_frame": ("last_frame_image", None),
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _measure(name: str, params: Mapping[str, Any]) -> tuple[str, float | None, str]:
    """(field to name, its measured value, unit) for the bound ``min_<name>``/``max_<name>``."""
    field, unit = _MEASURED.get(name, (name, ""))
    value = params.get(field)
    if value is None:
        return field, None, unit
    if unit == "characters":
        return field, float(len(value)) if isinstance(value, str) else None, unit
    if unit == "images":
        return field, float(len(value)) if isinstance(value, list | tuple) else 1.0, unit
    return field, _number(value), unit


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _bounds(limits: Mapping[str, Any]) -> dict[str, tuple[float | None, float | None]]:
    bounds: dict[str, tuple[float | None, float | None]] = {}
    for key, raw in limits.items():
        if key.startswith(("min_", "max_")):
            low, high = bounds.get(key[4:], (None, None))
            value = _number(raw)
            bounds[key[4:]] = (value, high) if key.startswith("min_") else (low, value)
    return bounds


def check(info: ModelInfo, params: Mapping[str, Any]) -> FieldErrors:
    """Every field of ``params`` outside the model's published limits or features."""
    errors: FieldErrors = []
    for name, (low, high) in _bounds(info.limits).items():
        field, value, unit = _measure(name, params)
        if value is None:
            continue
        suffix = f" {unit}" if unit else ""
        if low is not None and high is not None and not low <= value <= high:
            errors.append((field, f"The {field} must be between {_fmt(low)} and {_fmt(high)}{suffix}."))
        elif low is not None and value < low:
            errors.append((field, f"The {field} must be at least {_fmt(low)}{suffix}."))
        elif high is not None and value > high:
            errors.append((field, f"The {field} may not be greater than {_fmt(high)}{suffix}."))
    step = _number(info.limits.get("resolution_step"))
    if step:
        for field in ("width", "height"):
            value = _number(params.get(field))
            if value is not None and value % step and not any(f == field for f, _ in errors):
                errors.append((field, f"The {field} must be a multiple of {_fmt(step)}."))
    for flag, (field, unused) in _SWITCHES.items():
        value = params.get(field)
        if info.features.get(flag) is False and value is not None and value != unused and value != "":
            errors.append((field, f"The model does not support {field}."))
    return errors


def with_defaults(info: ModelInfo, params: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """``params`` with each of ``fields`` the client left out taken from ``info.defaults``."""
    filled = dict(params)
    for field in fields:
        if filled.get(field) is None and field in info.defaults:
            filled[field] = info.defaults[field]
    return filled
