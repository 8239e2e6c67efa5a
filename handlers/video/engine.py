"""Text/image-to-video on one LTX-Video class pipeline, loaded once per worker.

``VideoEngine.plan`` turns a validated input into the exact pipeline call: sizes rounded to
the model's resolution step, the frame count rounded *up* to what the VAE can produce
(``k * temporal_ratio + 1``; the extra frames are cut afterwards, so the clip has exactly
the frames asked for), the loaded model's defaults. ``VideoEngine.generate`` runs it with
a seeded CPU generator, reporting progress (and a preview frame) per denoising step.
"""

from __future__ import annotations

import inspect
import math
import os
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from handlers.common.errors import HandlerError, InvalidInput
from handlers.video import pipeline as loader
from handlers.video.schema import Limits, VideoInput

# Step-distilled LTX checkpoints: the model cards run 8 steps without CFG.
DISTILLED_STEPS = 8
# LTX >= 0.9.1 VAEs are timestep-conditioned: Lightricks' configs decode at timestep 0.05 with
# 2.5 % noise (diffusers' call defaults, 0 and none, give a softer picture).
DECODE_TIMESTEP = 0.05
DECODE_NOISE_SCALE = 0.025
_DISTILLED = re.compile(r"distill", re.IGNORECASE)


def round_side(value: int, step: int, low: int, high: int) -> int:
    """Nearest multiple of ``step``, kept inside ``[low, high]``."""
    lowest = math.ceil(low / step) * step
    highest = max(lowest, high // step * step)
    nearest = math.floor(value / step + 0.5) * step
    return min(max(nearest, lowest), highest)


def frames_to_generate(frames: int, temporal_ratio: int) -> int:
    """The smallest count the VAE decodes to (``k * ratio + 1``) that holds ``frames``."""
    return math.ceil((frames - 1) / temporal_ratio) * temporal_ratio + 1


def _env_number(name: str) -> float | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise HandlerError(f"{name} must be a number", code="bad_configuration") from None


@dataclass
class Plan:
    """Everything about one job decided before the pipeline runs."""

    task: str
    width: int
    height: int
    frames: int  # what the client gets
    generated: int  # what the pipeline makes (>= frames)
    fps: int
    steps: int
    seed: int
    kwargs: dict[str, Any]  # for the pipeline call, minus generator/callback/images
    ignored: list[str] = field(default_factory=list)


class VideoEngine:
    """One loaded model. Calls are serialised: a diffusers scheduler keeps per-call state."""

    def __init__(self, loaded: loader.Loaded, name: str) -> None:
        self.pipe = loaded.pipe
        self.name = name
        self.storage = loaded.storage
        self.device = loaded.device
        pipe = self.pipe
        self.spatial_ratio = int(getattr(pipe, "vae_spatial_compression_ratio", 32))
        self.temporal_ratio = int(getattr(pipe, "vae_temporal_compression_ratio", 8))
        self.patch = int(getattr(pipe, "transformer_spatial_patch_size", 1))
        self.patch_t = int(getattr(pipe, "transformer_temporal_patch_size", 1))
        self.step = self.spatial_ratio * self.patch
        signature = inspect.signature(pipe.__call__).parameters
        self.accepted = set(signature)
        self.native_width = _default(signature, "width", 768)
        self.native_height = _default(signature, "height", 512)
        self.distilled = bool(_DISTILLED.search(name) or _DISTILLED.search(str(getattr(pipe, "name_or_path", ""))))
        self.pipeline_steps = _default(signature, "num_inference_steps", 50)
        vae_config = getattr(getattr(pipe, "vae", None), "config", None)
        self.timestep_vae = bool(getattr(vae_config, "timestep_conditioning", False))
        self._derived: dict[str, Any] = {}
        self._lock = threading.Lock()

    # --- planning --------------------------------------------------------------------------

    def default_steps(self, limits: Limits) -> int:
        configured = _env_number("VIDEO_DEFAULT_STEPS")
        steps = int(configured) if configured else (DISTILLED_STEPS if self.distilled else self.pipeline_steps)
        return min(steps, limits.max_steps)

    def default_guidance(self) -> float | None:
        configured = _env_number("VIDEO_DEFAULT_GUIDANCE")
        if configured is not None:
            return configured
        return 1.0 if self.distilled else None  # 1.0: CFG off; None: the pipeline's default

    def plan(self, params: VideoInput, limits: Limits) -> Plan:
        if params.task == "aud2video":
            raise InvalidInput(
                "task",
                f"The loaded video model ({type(self.pipe).__name__}) cannot generate video from audio: "
                "aud2video needs an audio-conditioned model (LTX-2.3), which this worker does not serve.",
                code="unsupported_task",
            )
        width = round_side(params.width or self.native_width, self.step, limits.min_side, limits.max_side)
        height = round_side(params.height or self.native_height, self.step, limits.min_side, limits.max_side)
        frames = params.frames or limits.default_frames
        generated = frames_to_generate(frames, self.temporal_ratio * self.patch_t)
        fps = params.fps or limits.default_fps
        steps = params.steps or self.default_steps(limits)
        seed = params.seed if params.seed is not None else secrets.randbelow(2**32)
        kwargs: dict[str, Any] = {
            "prompt": params.prompt,
            "width": width,
            "height": height,
            "num_frames": generated,
            "num_inference_steps": steps,
            "output_type": "np",
        }
        if "frame_rate" in self.accepted:
            kwargs["frame_rate"] = fps  # LTX scales its temporal position embedding by it
        if self.timestep_vae and "decode_timestep" in self.accepted:
            timestep = _env_number("VIDEO_DECODE_TIMESTEP")
            noise = _env_number("VIDEO_DECODE_NOISE_SCALE")
            kwargs["decode_timestep"] = DECODE_TIMESTEP if timestep is None else timestep
            kwargs["decode_noise_scale"] = DECODE_NOISE_SCALE if noise is None else noise
        ignored: list[str] = []
        guidance = params.guidance
        if guidance is not None and guidance < 1.0:
            guidance = 1.0  # "0" in the catalogue means "no guidance"; LTX turns CFG off at <= 1
        if guidance is None:
            guidance = self.default_guidance()
        if guidance is not None:
            kwargs["guidance_scale"] = guidance
        if params.negative_prompt:
            kwargs["negative_prompt"] = params.negative_prompt
            if guidance is not None and guidance <= 1.0:
                ignored.append("negative_prompt")  # acts only through CFG, which is off
        return Plan(params.task, width, height, frames, generated, fps, steps, seed, kwargs, ignored)

    # --- running ---------------------------------------------------------------------------

    def pipeline_for(self, task: str, last_frame: bool) -> Any:
        """The pipeline a task runs on; a missing one is a clear error naming the field."""
        if task == "txt2video":
            return self.pipe
        kind = "condition" if last_frame else "img2video"
        if kind not in self._derived:
            self._derived[kind] = loader.derived(self.pipe, kind)
        pipe = self._derived[kind]
        if pipe is None:
            param = "last_frame_image" if last_frame else "first_frame_image"
            raise InvalidInput(param, f"The loaded video model cannot use {param}.", code="unsupported_value")
        return pipe

    def generate(
        self,
        plan: Plan,
        first_frame: Any | None,
        last_frame: Any | None,
        on_step: Callable[[Any, int, int, Any], None],
    ) -> Any:
        """Frames as uint8 ``(frames, height, width, 3)``. ``on_step(pipe, step, total, latents)``
        runs after every denoising step (progress, preview and the cancel check)."""
        import numpy as np
        import torch

        generator = torch.Generator("cpu").manual_seed(plan.seed)  # same noise on every device
        kwargs: dict[str, Any] = dict(plan.kwargs, generator=generator)
        with self._lock:
            pipe = self.pipeline_for(plan.task, last_frame is not None)
            if last_frame is not None:
                from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

                kwargs["conditions"] = [
                    LTXVideoCondition(image=first_frame, frame_index=0),
                    LTXVideoCondition(image=last_frame, frame_index=plan.generated - 1),
                ]
            elif first_frame is not None:
                kwargs["image"] = first_frame

            def callback(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                total = int(getattr(pipe, "num_timesteps", 0) or plan.steps)
                on_step(pipe, step, total, tensors.get("latents"))
                return tensors

            kwargs["callback_on_step_end"] = callback
            frames = pipe(**kwargs).frames
        video = np.asarray(frames[0])[: plan.frames]
        return (np.clip(video, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _default(signature: Any, name: str, fallback: int) -> int:
    parameter = signature.get(name)
    value = parameter.default if parameter is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) else fallback


_engine: VideoEngine | None = None
_engine_lock = threading.Lock()


def get_engine() -> VideoEngine:
    """The worker's engine, loaded on first use (the lock stops two jobs loading it twice)."""
    global _engine
    name = loader.model_id()
    with _engine_lock:
        if _engine is None or _engine.name != name:
            _engine = None  # drop the old pipeline before loading another into memory
            _engine = VideoEngine(loader.load(name), name)
        return _engine
