"""GET /api/v1/videos/models: the video surface's models as OpenRouter's video model list.

What a model accepts is read from its routing.yaml limits, so the list promises only what
``POST /api/v1/videos`` will take: durations whose frame count fits ``min/max_frames`` at the
model's fps, resolution tiers and aspect ratios whose sides fit its width and height limits.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get
from litestar.datastructures import State

from app.docs.tags import TAG_OPENAI
from app.openrouter import media_sizes
from app.openrouter.media_docs import JOB_ERRORS
from app.openrouter.media_video import PATH, frames_for
from app.routing.schema import ModelRoute
from app.services import Services

ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21")
_MAX_DURATION_S = 60


def _limit(route: ModelRoute, name: str, fallback: float) -> float:
    value = route.info.limits.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else fallback


def _fits(route: ModelRoute, sides: tuple[int, int] | None) -> bool:
    if sides is None:
        return True
    width, height = sides
    return (_limit(route, "min_width", 1) <= width <= _limit(route, "max_width", 1e9)
            and _limit(route, "min_height", 1) <= height <= _limit(route, "max_height", 1e9))


def _resolutions(route: ModelRoute) -> list[str]:
    wide = 16 / 9
    found = []
    for tier, pixels in media_sizes.VIDEO_TIERS.items():
        side = {"short": pixels} if tier.endswith("p") else {"long": pixels}
        if _fits(route, media_sizes.sides(route, aspect=wide, **side)):
            found.append(tier)
    return found


def video_model(name: str, route: ModelRoute) -> dict[str, Any]:
    """One model as OpenRouter's ``VideoModel``."""
    frames = (_limit(route, "min_frames", 1), _limit(route, "max_frames", 1e9))
    durations = [s for s in range(1, _MAX_DURATION_S + 1) if frames[0] <= frames_for(route, s) <= frames[1]]
    ratios = [r for r in ASPECT_RATIOS if _fits(route, media_sizes.sides(route, aspect=media_sizes.ratio(r)))]
    frame_images = []
    if "img2video" in route.inference_types:
        frame_images.append("first_frame")
        if route.info.features.get("supports_last_frame"):
            frame_images.append("last_frame")
    model: dict[str, Any] = {
        "id": name, "canonical_slug": name, "name": route.name or name, "created": 0,
        "allowed_passthrough_parameters": list(route.pass_through), "seed": True, "generate_audio": None,
        "creativity": None, "upscale_factor": None, "supported_durations": durations,
        "supported_resolutions": _resolutions(route), "supported_aspect_ratios": ratios,
        "supported_frame_images": frame_images, "supported_sizes": None,  # any WIDTHxHEIGHT within the limits
    }
    if route.description:
        model["description"] = route.description
    return model


@get(
    f"{PATH}/models",
    summary="List video models (OpenRouter)",
    description="The video surface's models that `POST /api/v1/videos` serves, with the durations, "
    "resolutions, aspect ratios and frame images each accepts.",
    tags=[TAG_OPENAI],
    responses=JOB_ERRORS,
)
async def openrouter_video_models(state: State) -> Response[Any]:
    services: Services = state.services
    surface = services.routing.config.surfaces.get("video")
    models = surface.models.items() if surface is not None else []
    data = [video_model(name, route) for name, route in models
            if {"txt2video", "img2video"} & set(route.inference_types)]
    return Response(content=msgspec.json.encode({"data": data}), media_type="application/json")
