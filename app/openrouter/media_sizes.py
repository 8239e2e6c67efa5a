"""OpenRouter's size words (``aspect_ratio``, ``resolution`` tiers, ``size``) as pixel sides.

OpenRouter normalises sizes per provider; here the provider is the model's own worker, so a
tier and a ratio become a width and a height on the model's ``resolution_step`` grid. The
model's limits are checked afterwards by the task, like any width and height.
"""

from __future__ import annotations

import re

from app.errors import InvalidRequest
from app.routing.schema import ModelRoute

_RATIO = re.compile(r"^(?P<w>\d+(?:\.\d+)?):(?P<h>\d+(?:\.\d+)?)$")
_PIXELS = re.compile(r"^(?P<w>\d{2,5})x(?P<h>\d{2,5})$")
# Image tiers name the long side; video tiers ending in p name the short side.
IMAGE_TIERS = {"512": 512, "768": 768, "1K": 1024, "1.5K": 1536, "2K": 2048, "4K": 4096}
VIDEO_TIERS = {"360p": 360, "480p": 480, "720p": 720, "768p": 768, "1080p": 1080, "1K": 1024, "2K": 2048,
               "4K": 4096}
_MAX_SIDE = 8192


def ratio(value: str | None, param: str = "aspect_ratio") -> float | None:
    """``"16:9"`` → 1.777…; ``"auto"`` or nothing → None."""
    if value is None or value == "auto":
        return None
    match = _RATIO.match(value)
    width, height = (float(match["w"]), float(match["h"])) if match else (0.0, 0.0)
    if width <= 0 or height <= 0 or not 0.05 <= width / height <= 20:
        raise InvalidRequest(f"{param} must look like W:H, e.g. 16:9", param=param)
    return width / height


def pixels(value: str, param: str = "size") -> tuple[int, int] | None:
    """``"1024x768"`` → (1024, 768); anything else → None."""
    match = _PIXELS.match(value)
    if match is None:
        return None
    width, height = int(match["w"]), int(match["h"])
    if not (1 <= width <= _MAX_SIDE and 1 <= height <= _MAX_SIDE):
        raise InvalidRequest(f"{param} sides must be between 1 and {_MAX_SIDE}", param=param)
    return width, height


def _step(route: ModelRoute) -> int:
    step = route.info.limits.get("resolution_step")
    return int(step) if isinstance(step, int | float) and not isinstance(step, bool) and step >= 1 else 8


def _default_long(route: ModelRoute) -> int:
    sides = [route.info.defaults.get(name) for name in ("width", "height")]
    numbers = [int(side) for side in sides if isinstance(side, int | float) and not isinstance(side, bool)]
    return max(numbers) if numbers else 1024


def sides(route: ModelRoute, *, long: int | None = None, short: int | None = None,
          aspect: float | None = None) -> tuple[int, int] | None:
    """Width and height for a long or short side and an aspect ratio (1:1 when unknown), on the
    model's grid; None when nothing was asked (the model's defaults apply)."""
    if long is None and short is None and aspect is None:
        return None
    aspect = aspect or 1.0
    if short is not None:
        width, height = (short * aspect, float(short)) if aspect >= 1 else (float(short), short / aspect)
    else:
        side = long or _default_long(route)
        width, height = (float(side), side / aspect) if aspect >= 1 else (side * aspect, float(side))
    step = _step(route)
    return max(step, round(width / step) * step), max(step, round(height / step) * step)


def check_pixels_agree(width: int, height: int, *, tier_long: int | None, aspect: float | None) -> None:
    """An explicit pixel ``size`` is authoritative: a ``resolution`` or ``aspect_ratio`` that
    disagrees with it is refused (OpenRouter does the same)."""
    if aspect is not None and abs(width / height - aspect) > 0.02 * aspect:
        raise InvalidRequest("size and aspect_ratio disagree; send one of them", param="aspect_ratio")
    if tier_long is not None and max(width, height) != tier_long:
        raise InvalidRequest("size and resolution disagree; send one of them", param="resolution")
