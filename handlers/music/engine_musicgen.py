"""MusicGen through transformers: captions to instrumental music, light enough for a CPU.

``MusicgenForConditionalGeneration`` and its processor (T5 tokenizer) load from a hub id
(``facebook/musicgen-small``) or a local directory. The decoder writes EnCodec codebook
frames one at a time (50 per second for the 32 kHz models), so a duration is a number of new
tokens, plus one per extra codebook for MusicGen's delay pattern. bpm, key and time
signature have no input of their own: they are written into the text prompt. MusicGen was
trained on 30 s clips and its positions end at ``max_position_embeddings``: longer requests
are refused naming ``duration``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import Any

from handlers.common.cancel import CancelToken
from handlers.common.errors import HandlerError, InvalidInput
from handlers.music.engine import FAMILIES, Composition, Music, choose_device

logger = logging.getLogger("handlers.music")
_METER = {2: "2/4", 3: "3/4", 4: "4/4", 6: "6/8"}


def describe(request: Composition) -> str:
    """The caption with the musical metadata folded in, as MusicGen's text prompt."""
    parts = [request.caption.strip().rstrip(".")]
    if request.bpm is not None:
        parts.append(f"{request.bpm} bpm")
    if request.keyscale:
        parts.append(request.keyscale.strip())
    if request.timesignature is not None:
        parts.append(f"{_METER[request.timesignature]} time")
    return ", ".join(parts)


class MusicgenEngine:
    family = FAMILIES["musicgen"]

    def __init__(self, name: str, model: Any, processor: Any, device: str) -> None:
        self.name = name
        self.model = model
        self.processor = processor
        self.device = device
        audio = model.config.audio_encoder
        self.sample_rate = int(audio.sampling_rate)
        self.channels = int(getattr(audio, "audio_channels", 1))
        self.frame_rate = float(audio.frame_rate)
        self.codebooks = int(model.decoder.config.num_codebooks)
        positions = int(model.decoder.config.max_position_embeddings)
        self.max_duration = (positions - self.codebooks) / self.frame_rate
        self._lock = threading.Lock()  # one generation at a time: seeds are exact, cores not oversubscribed

    @classmethod
    def load(cls, name: str) -> MusicgenEngine:
        try:
            import torch
            from transformers import AutoProcessor, MusicgenForConditionalGeneration

            device = choose_device()
            dtype = torch.float16 if device.startswith("cuda") else torch.float32
            model: Any = MusicgenForConditionalGeneration.from_pretrained(name, dtype=dtype)
            model = model.to(device).eval()
            processor = AutoProcessor.from_pretrained(name)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise HandlerError(
                f"Could not load music model {name!r}: {type(exc).__name__}: {exc}", code="model_load_failed"
            ) from exc
        logger.info("loaded music model %s (MusicGen) on %s", name, device)
        return cls(name, model, processor, device)

    def compose(self, request: Composition, on_progress: Callable[[float], None], cancel: CancelToken) -> Music:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        if request.duration > self.max_duration + 1e-6:
            raise InvalidInput("duration", f"This model (musicgen) makes at most {self.max_duration:g} seconds")
        frames = math.ceil(request.duration * self.frame_rate)
        tokens = frames + self.codebooks - 1  # the delay pattern costs one frame per extra codebook
        made = 0

        class _Steps(StoppingCriteria):
            """Called once per generated frame: progress and the cancel point."""

            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                nonlocal made
                made += 1
                on_progress(95.0 * made / tokens)
                cancel.check()
                return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

        inputs = self.processor(text=[describe(request)], padding=True, return_tensors="pt").to(self.device)
        extra: dict[str, Any] = {}
        if request.guidance_scale is not None:
            extra["guidance_scale"] = request.guidance_scale
        with self._lock, torch.inference_mode():
            torch.manual_seed(request.seed)  # sampling draws from the global generator
            audio = self.model.generate(
                **inputs,
                do_sample=True,
                max_new_tokens=tokens,
                stopping_criteria=StoppingCriteriaList([_Steps()]),
                **extra,
            )
        samples = audio[0].float().cpu().numpy().reshape(self.channels, -1)
        wanted = round(request.duration * self.sample_rate)
        if samples.shape[1] < wanted:  # never expected; keep the reported duration honest
            import numpy as np

            samples = np.pad(samples, ((0, 0), (0, wanted - samples.shape[1])))
        return Music(samples[:, :wanted], self.sample_rate, made)
