"""Text-to-image on one diffusers pipeline, loaded once per worker.

``ImageEngine.plan`` turns a validated input into the exact pipeline call (rounded size,
the loaded model's own defaults, only the keyword arguments this pipeline's ``__call__``
accepts);
``ImageEngine.generate`` runs it with one seeded generator per image.
"""

from __future__ import annotations

import inspect
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from handlers.common.cancel import CancelToken
from handlers.images import pipeline as loader
from handlers.images.schema import ImagesInput, Limits

# Step-distilled checkpoints: few steps, no classifier-free guidance.
DISTILLED_STEPS = 4
STANDARD_STEPS = 25  # only for a pipeline whose __call__ states no default
# FLUX.1-schnell's T5 context: the pipeline default (512) is FLUX.1-dev's, not schnell's.
SCHNELL_MAX_SEQUENCE_LENGTH = 256
# Models whose distillation their config does not state: the model card's settings, by exact
# hub id (the config is what decides for everything else).
MODEL_CARD_DEFAULTS: dict[str, tuple[int, float | None]] = {
    "Tongyi-MAI/Z-Image-Turbo": (9, 0.0),  # 8 DiT forwards; the card and pipeline example use 8-9
    "stabilityai/sd-turbo": (DISTILLED_STEPS, 0.0),
    "stabilityai/sdxl-turbo": (DISTILLED_STEPS, 0.0),
    # Qwen-Image-Edit-Plus: the card's 40 steps; its CFG is true CFG (edit.py), the pipeline's 4.0
    "Qwen/Qwen-Image-Edit-2509": (40, None),
}
_PROGRESS_INTERVAL_S = 0.5  # RunPod posts every update over HTTP; don't send one per step


def resolution_step(pipe: Any) -> int:
    """The multiple that width and height must be: VAE downsampling x latent patching."""
    vae = int(getattr(pipe, "vae_scale_factor", 8) or 8)
    processor = getattr(getattr(pipe, "image_processor", None), "config", None)
    processor_factor = int(getattr(processor, "vae_scale_factor", vae) or vae)
    denoiser = getattr(pipe, "transformer", None) or getattr(pipe, "unet", None)
    patch = getattr(getattr(denoiser, "config", None), "patch_size", 1)
    patch = int(patch) if isinstance(patch, int) and patch > 0 else 1
    if hasattr(pipe, "_pack_latents"):
        patch = max(patch, 2)  # Flux-style pipelines pack 2x2 latent patches into tokens
    return math.lcm(vae * patch, processor_factor)


def native_side(pipe: Any) -> int:
    """The side the checkpoint was trained at (512 for SD 2.x turbo, 1024 for Flux/SDXL)."""
    vae = int(getattr(pipe, "vae_scale_factor", 8) or 8)
    sample = getattr(pipe, "default_sample_size", None)
    if sample is None:
        denoiser = getattr(pipe, "transformer", None) or getattr(pipe, "unet", None)
        sample = getattr(getattr(denoiser, "config", None), "sample_size", None)
    if isinstance(sample, list | tuple):
        sample = sample[0]
    return int(sample) * vae if isinstance(sample, int) and sample > 0 else 1024


def round_side(value: int, step: int, low: int, high: int) -> int:
    """Nearest multiple of ``step``, kept inside ``[low, high]``."""
    lowest = math.ceil(low / step) * step
    highest = max(lowest, high // step * step)
    nearest = math.floor(value / step + 0.5) * step
    return min(max(nearest, lowest), highest)


@dataclass(frozen=True)
class ModelDefaults:
    """What a job that names no steps or guidance runs with, and why."""

    steps: int
    guidance: float | None  # None: the pipeline's own default
    source: str
    max_sequence_length: int | None = None


def model_defaults(pipe: Any, name: str) -> ModelDefaults:
    """Step and guidance defaults from the loaded pipeline's own config, per model.

    - ``is_distilled`` in ``model_index.json`` (FLUX.2-klein): a few steps, guidance off;
    - a Flux transformer without ``guidance_embeds`` (FLUX.1-schnell, timestep-distilled):
      4 steps, guidance 0, and its 256-token T5 context;
    - a model whose config cannot say it is distilled: its model card (``MODEL_CARD_DEFAULTS``);
    - anything else: the defaults of the pipeline's ``__call__``.
    """
    config = getattr(pipe, "config", None) or {}
    if config.get("is_distilled"):
        return ModelDefaults(DISTILLED_STEPS, 1.0, "model_index.json: is_distilled")
    denoiser = getattr(pipe, "transformer", None)
    transformer = getattr(denoiser, "config", None)
    # Qwen-Image also packs latents and has guidance_embeds False, yet is not step-distilled.
    is_flux = type(denoiser).__name__.startswith("Flux")
    if is_flux and hasattr(pipe, "_pack_latents") and getattr(transformer, "guidance_embeds", None) is False:
        return ModelDefaults(DISTILLED_STEPS, 0.0, "flux without guidance_embeds", SCHNELL_MAX_SEQUENCE_LENGTH)
    for candidate in (name, str(getattr(pipe, "name_or_path", "") or "")):
        if candidate in MODEL_CARD_DEFAULTS:
            steps, guidance = MODEL_CARD_DEFAULTS[candidate]
            return ModelDefaults(steps, guidance, "model card")
    declared = inspect.signature(pipe.__call__).parameters.get("num_inference_steps")
    steps = declared.default if declared is not None and isinstance(declared.default, int) else STANDARD_STEPS
    return ModelDefaults(steps, None, "pipeline defaults")


@dataclass
class Plan:
    """Everything about one job that is decided before the pipeline runs."""

    width: int
    height: int
    steps: int
    seed: int
    num_images: int
    kwargs: dict[str, Any]  # keyword arguments for the pipeline call, minus generators/callback
    ignored: list[str] = field(default_factory=list)  # inputs this pipeline cannot use


class ImageEngine:
    """One loaded pipeline. Calls are serialised: a diffusers scheduler keeps per-call state."""

    def __init__(self, pipe: Any, name: str) -> None:
        self.pipe = pipe
        self.name = name
        self.step = resolution_step(pipe)
        self.native = native_side(pipe)
        self.accepted = set(inspect.signature(pipe.__call__).parameters)
        self.defaults = model_defaults(pipe, name)
        self._lock = threading.Lock()

    def default_steps(self, limits: Limits) -> int:
        return min(limits.default_steps or self.defaults.steps, limits.max_steps)

    def plan(self, params: ImagesInput, limits: Limits) -> Plan:
        width = round_side(params.width or self.native, self.step, limits.min_side, limits.max_side)
        height = round_side(params.height or self.native, self.step, limits.min_side, limits.max_side)
        steps = params.num_inference_steps or self.default_steps(limits)
        count = params.num_images or 1
        seed = params.seed if params.seed is not None else secrets.randbelow(2**32)
        kwargs: dict[str, Any] = {
            "prompt": params.prompt,
            "width": width,
            "height": height,
            "num_inference_steps": steps,
            "output_type": "pil",
        }
        ignored: list[str] = []
        if self.defaults.max_sequence_length is not None and "max_sequence_length" in self.accepted:
            kwargs["max_sequence_length"] = self.defaults.max_sequence_length
        guidance = params.guidance_scale
        if guidance is None:
            # Distilled models need CFG off (sd-turbo breaks at the pipeline default 7.5).
            guidance = limits.default_guidance if limits.default_guidance is not None else self.defaults.guidance
        if guidance is not None:
            if "guidance_scale" in self.accepted:
                kwargs["guidance_scale"] = guidance
            elif params.guidance_scale is not None:
                ignored.append("guidance_scale")
        if params.negative_prompt:
            if "negative_prompt" in self.accepted:
                kwargs["negative_prompt"] = params.negative_prompt
                if "true_cfg_scale" in self.accepted:
                    # Flux-style: `guidance_scale` is distilled guidance; a negative prompt only
                    # acts through true CFG, which doubles the compute.
                    kwargs["true_cfg_scale"] = limits.true_cfg_scale
            else:
                ignored.append("negative_prompt")
        return Plan(width, height, steps, seed, count, kwargs, ignored)

    def generate(
        self, plan: Plan, on_progress: Callable[[float], None] | None = None, cancel: CancelToken | None = None
    ) -> list[Any]:
        """Run the plan; image ``i`` comes from a CPU generator seeded ``seed + i``. A cancelled
        ``cancel`` ends the call at the next denoising step (``JobCancelled``)."""
        import torch

        # CPU generators give the same noise on every device, so a seed means the same image
        # on a laptop and on a GPU worker (up to kernel numerics).
        generators = [torch.Generator("cpu").manual_seed(plan.seed + i) for i in range(plan.num_images)]
        with self._lock:
            if "num_images_per_prompt" in self.accepted:
                return self._call(plan, generators, on_progress, cancel, 0, 1)
            images: list[Any] = []
            for index, generator in enumerate(generators):  # pipelines without batching
                images += self._call(plan, [generator], on_progress, cancel, index, plan.num_images)
            return images

    def _call(
        self,
        plan: Plan,
        generators: list[Any],
        on_progress: Callable[[float], None] | None,
        cancel: CancelToken | None,
        index: int,
        calls: int,
    ) -> list[Any]:
        if cancel is not None:
            cancel.check()
        kwargs = dict(plan.kwargs, generator=generators)
        if "num_images_per_prompt" in self.accepted:
            kwargs["num_images_per_prompt"] = len(generators)
        if (on_progress is not None or cancel is not None) and "callback_on_step_end" in self.accepted:
            kwargs["callback_on_step_end"] = _StepReporter(on_progress, cancel, plan.steps, index, calls)
        images: list[Any] = self.pipe(**kwargs).images
        return images


class _StepReporter:
    """``callback_on_step_end``: the cancel check after every denoising step, and progress
    mapped to 0-95 % (decode and encode follow)."""

    def __init__(
        self,
        report: Callable[[float], None] | None,
        cancel: CancelToken | None,
        steps: int,
        index: int,
        calls: int,
    ) -> None:
        self.report = report
        self.cancel = cancel
        self.steps = steps
        self.index = index  # which of `calls` sequential pipeline calls this one is
        self.calls = calls
        self.last = 0.0

    def __call__(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.cancel is not None:
            self.cancel.check()  # raised through diffusers: the pipeline call ends here
        if self.report is None:
            return callback_kwargs
        total = int(getattr(pipe, "num_timesteps", 0) or self.steps)
        done = (self.index + (step + 1) / total) / self.calls
        now = time.monotonic()
        if step == 0 or step + 1 >= total or now - self.last >= _PROGRESS_INTERVAL_S:
            self.last = now
            self.report(round(95.0 * min(done, 1.0), 1))
        return callback_kwargs


_engine: ImageEngine | None = None
_engine_lock = threading.Lock()


def loaded_engine() -> ImageEngine | None:
    """The txt2img engine if it is loaded (the img2img task can share its weights)."""
    return _engine


def get_engine() -> ImageEngine:
    """The worker's engine, loaded on first use (the lock stops two jobs loading it twice)."""
    global _engine
    name = loader.model_id()
    with _engine_lock:
        if _engine is None or _engine.name != name:
            _engine = None  # drop the old pipeline before loading another into memory
            _engine = ImageEngine(loader.load_pipeline(name), name)
        return _engine
