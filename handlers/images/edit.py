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

import inspect
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
        self._true_cfg(plan)
        rgb = [picture.convert("RGB") for picture in pictures]  # the models see colour only
        plan.kwargs["image"] = rgb if self.multi_image else rgb[0]
        if "strength" in self.accepted:
            # img2img runs int(steps * strength) steps: at least one, so a 1-step turbo default
            # or a tiny strength still edits instead of failing inside diffusers.
            declared = inspect.signature(self.pipe.__call__).parameters["strength"].default
            fallback = float(declared) if isinstance(declared, int | float) else 1.0
            strength = params.strength if params.strength is not None else fallback
            plan.kwargs["strength"] = max(strength, 1.0 / plan.steps)
            if int(plan.steps * plan.kwargs["strength"]) < 1:  # float rounding of 1/steps
                plan.kwargs["strength"] = 1.0
        elif params.strength is not None:
            plan.ignored.append("strength")  # instruction editors rewrite from the picture
        return plan

    def _true_cfg(self, plan: Plan) -> None:
        """Qwen-Image-Edit-style pipelines have no distilled guidance: ``guidance_scale`` is
        their true-CFG strength, which acts only with a negative prompt (the model card's is
        a blank one)."""
        transformer = getattr(getattr(self.pipe, "transformer", None), "config", None)
        if "true_cfg_scale" not in self.accepted or getattr(transformer, "guidance_embeds", True) is not False:
            return
        guidance = plan.kwargs.pop("guidance_scale", None)
        if guidance is not None:
            plan.kwargs["true_cfg_scale"] = guidance
        else:
            guidance = inspect.signature(self.pipe.__call__).parameters["true_cfg_scale"].default
        if isinstance(guidance, int | float) and guidance > 1 and "negative_prompt" not in plan.kwargs:
            plan.kwargs["negative_prompt"] = " "


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
            _engine = EditEngine(_shared_or_loaded(name), name)
        return _engine


def _shared_or_loaded(name: str) -> Any:
    """The txt2img pipeline's img2img twin when both tasks run one model (same weights, no
    second copy in memory), else a fresh load."""
    from handlers.images import engine

    loaded = engine.loaded_engine()
    if loaded is not None and loaded.name == name:
        return loader.image_to_image(loaded.pipe)
    return loader.load_edit_pipeline(name)
