"""ACE-Step 1.5 through diffusers' ``AceStepPipeline``: the catalogue's text-to-music model.

The pipeline (Qwen3 text encoder, a condition encoder fusing caption, lyrics and a timbre
reference, the flow-matching DiT and the Oobleck VAE at 25 latent frames per second) loads
from a hub id or a local directory in diffusers' layout (``model_index.json``), as
``ACE-Step/acestep-v15-xl-turbo-diffusers`` ships. ACE-Step's own ``acestep`` package is not
used: its PyPI release is a broken sdist and diffusers carries the same model code.

Turbo checkpoints have guidance distilled in: the pipeline ignores ``guidance_scale`` on
them (base and SFT checkpoints apply it). A cancelled job stops after its current step.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from handlers.common.cancel import CancelToken
from handlers.common.errors import HandlerError
from handlers.music.engine import FAMILIES, Composition, Music, choose_device, seeded_generator

logger = logging.getLogger("handlers.music")


class AceStepEngine:
    family = FAMILIES["acestep"]

    def __init__(self, name: str, pipe: Any, device: str) -> None:
        self.name = name
        self.pipe = pipe
        self.device = device
        self.sample_rate = int(pipe.sample_rate)
        self.channels = int(pipe.vae.config.audio_channels)
        self.turbo = bool(pipe.is_turbo)
        self._lock = threading.Lock()  # one generation at a time: the GPU holds one song's activations

    @classmethod
    def load(cls, name: str) -> AceStepEngine:
        try:
            import torch
            from diffusers import AceStepPipeline

            device = choose_device()
            dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
            pipe = AceStepPipeline.from_pretrained(name, dtype=dtype)  # type: ignore[no-untyped-call]
            pipe = pipe.to(device)
        except Exception as exc:
            raise HandlerError(
                f"Could not load music model {name!r}: {type(exc).__name__}: {exc}", code="model_load_failed"
            ) from exc
        pipe.set_progress_bar_config(disable=True)
        logger.info("loaded music model %s (ACE-Step, %s) on %s", name, "turbo" if pipe.is_turbo else "base", device)
        return cls(name, pipe, device)

    def compose(self, request: Composition, on_progress: Callable[[float], None], cancel: CancelToken) -> Music:
        import torch

        steps = request.steps or int(self.family.default_steps or 8)
        done = 0

        def step_end(pipe: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            nonlocal done
            done = index + 1
            on_progress(95.0 * done / steps)
            cancel.check()  # ends the job here; the pipeline's loop never sees the next step
            return tensors

        # Turbo checkpoints have guidance distilled in: the pipeline would drop a scale above 1
        # with a warning on every job. Say so in the result instead, and run without CFG.
        ignored = ("guidance_scale",) if self.turbo and request.guidance_scale is not None else ()
        extra: dict[str, Any] = {"guidance_scale": 1.0 if self.turbo else request.guidance_scale}
        if extra["guidance_scale"] is None:
            del extra["guidance_scale"]  # the pipeline's own default (7.0 on base and SFT checkpoints)
        if request.reference is not None:
            extra["reference_audio"] = torch.from_numpy(request.reference)
        with self._lock, torch.inference_mode():
            # The reference clip's VAE encoding samples from the global generator: seed it too.
            torch.manual_seed(request.seed)
            audio = self.pipe(
                prompt=request.caption,
                lyrics=request.lyrics,
                audio_duration=request.duration,
                vocal_language=request.vocal_language,
                num_inference_steps=steps,
                generator=seeded_generator(request.seed),
                bpm=request.bpm,
                keyscale=request.keyscale,
                timesignature=str(request.timesignature) if request.timesignature else None,
                callback_on_step_end=step_end,
                output_type="pt",
                **extra,
            ).audios
        samples = audio[0].float().cpu().numpy()
        wanted = round(request.duration * self.sample_rate)  # the VAE works in whole latent frames
        return Music(samples[:, :wanted], self.sample_rate, done, ignored)
