"""``img2img``: instruction editing (Qwen-Image-Edit-Plus class) or a diffusers img2img pipeline.

``IMAGES_EDIT_MODEL`` (default: ``IMAGES_MODEL``) is loaded with ``DiffusionPipeline``: an
editing checkpoint comes back as its own pipeline (``QwenImageEditPlusPipeline`` takes one or
several pictures and an instruction); a text-to-image checkpoint (sd-turbo, SDXL, Flux) is
turned into its img2img twin with ``AutoPipelineForImage2Image.from_pipe``, sharing weights.

The output size is ``width``/``height`` when given, else the first picture's size scaled to
fit ``IMAGES_MAX_SIDE``, both rounded to the model's resolution step; a pipeline that takes no
size gets its pictures resized to it. Seeds, steps, guidance, negative prompts, progress
and cancellation work as for txt2img (``engine.py``).
"""

from __future__ import annotations

import threading
from typing import Any

from handlers.common.errors import InvalidInput
from handlers.images import pipeline as loader
from handlers.images.engine import ImageEngine, Plan, round_side
from handlers.images.schema import EditInput, Limits

# Pipelines whose ``image`` is a set of reference pictures rather than a batch to process.
MULTI_IMAGE_PIPELINES = frozenset({"QwenImageEditPlusPipeline", "Flux2Pipeline", "Flux2KleinPipeline"})


def fit_size(width: int, height: int, step: int, limits: Limits) -> tuple[int, int]:
    """The picture's own size scaled down (never up) to fit the side limit, on the model's grid."""
    shrink = min(1.0, limits.max_side / max(width, height))
    return (
        round_side(round(width * shrink), step, limits.min_side, limits.max_side),
        round_side(round(height * shrink), step, limits.min_side, limits.max_side),
    )


class EditEngine(ImageEngine):
    """An image-to-image pipeline: txt2img's planning plus the input pictures and ``strength``."""

    def __init__(self, pipe: Any, name: str) -> None:
        super().__init__(pipe, name)
        self.multi_image = type(pipe).__name__ in MULTI_IMAGE_PIPELINES

    def plan_edit(self, params: EditInput, pictures: list[Any], limits: Limits) -> Plan:
        if len(pictures) > 1 and not self.multi_image:
            raise InvalidInput("images", "This model edits one image at a time; send a single image")
        if params.width and params.height:
            width = round_side(params.width, self.step, limits.min_side, limits.max_side)
            height = round_side(params.height, self.step, limits.min_side, limits.max_side)
        else:
            width, height = fit_size(pictures[0].width, pictures[0].height, self.step, limits)
        sized = self.accepted.issuperset({"width", "height"})
        plan = self.plan(params, limits)  # prompt, steps, guidance, negative prompt, seed
        plan.width, plan.height = width, height
        if not sized:
            del plan.kwargs["width"], plan.kwargs["height"]
            pictures = [_resized(picture, width, height) for picture in pictures]
        else:
            plan.kwargs["width"], plan.kwargs["height"] = width, height
        rgb = [picture.convert("RGB") for picture in pictures]  # the models see colour only
        plan.kwargs["image"] = rgb if self.multi_image else rgb[0]
        if params.strength is not None:
            if "strength" in self.accepted:
                plan.kwargs["strength"] = params.strength
            else:
                plan.ignored.append("strength")  # instruction editors rewrite from the picture
        return plan


def _resized(picture: Any, width: int, height: int) -> Any:
    from PIL import Image

    return picture if picture.size == (width, height) else picture.resize((width, height), Image.Resampling.LANCZOS)


_engine: EditEngine | None = None
_engine_lock = threading.Lock()


def get_edit_engine() -> EditEngine:
    """The worker's editing pipeline, loaded on first use (the lock stops a double load)."""
    global _engine
    name = loader.edit_model_id()
    with _engine_lock:
        if _engine is None or _engine.name != name:
            _engine = None
            _engine = EditEngine(loader.load_edit_pipeline(name), name)
        return _engine
