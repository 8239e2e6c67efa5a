"""faster-whisper models, loaded once per worker and kept for its lifetime.

``TRANSCRIBE_MODEL`` (a whisper size such as ``large-v3``, a CTranslate2 model id on the
hub, or a local CTranslate2 directory) is the model this worker serves. A job's ``model``
may pick another only if the operator lists it in ``TRANSCRIBE_EXTRA_MODELS``; anything
else is served by ``TRANSCRIBE_MODEL``. That is deliberate: the gateway sends the route's
upstream model id (``large-v3``) even to a local worker running ``tiny``, and a client must
not be able to make a worker download and hold arbitrary checkpoints. The output's
``model`` says which model actually ran.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handlers.common.errors import HandlerError
from handlers.transcribe.audio import SAMPLE_RATE

if TYPE_CHECKING:
    import numpy as np
    from faster_whisper import WhisperModel

DEFAULT_MODEL = "large-v3"


_models: dict[str, LoadedModel] = {}
_lock = threading.Lock()  # one load at a time; a second job waits for the first load


@dataclass(frozen=True)
class LoadedModel:
    name: str  # as configured (size, hub id or directory)
    model: WhisperModel
    device: str
    compute_type: str

    @property
    def label(self) -> str:
        """The name reported in outputs: a directory's base name, never a full local path."""
        return Path(self.name).name if os.path.isdir(self.name) else self.name


def configured_model() -> str:
    return os.environ.get("TRANSCRIBE_MODEL", "").strip() or DEFAULT_MODEL


def extra_models() -> frozenset[str]:
    return frozenset(n.strip() for n in os.environ.get("TRANSCRIBE_EXTRA_MODELS", "").split(",") if n.strip())


def choose_model(requested: str | None) -> str:
    """The model a job runs on (see the module docstring)."""
    configured = configured_model()
    if requested and requested != configured and requested in extra_models():
        return requested
    return configured


def device_and_compute_type() -> tuple[str, str]:
    """``TRANSCRIBE_DEVICE`` / ``TRANSCRIBE_COMPUTE_TYPE``; auto: cuda+float16, else cpu+int8."""
    import ctranslate2

    device = os.environ.get("TRANSCRIBE_DEVICE", "auto").strip().lower() or "auto"
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute_type = os.environ.get("TRANSCRIBE_COMPUTE_TYPE", "auto").strip().lower() or "auto"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def get_model(name: str | None = None) -> LoadedModel:
    """The loaded model ``name`` (default ``TRANSCRIBE_MODEL``), loading it on first use."""
    name = name or configured_model()
    loaded = _models.get(name)
    if loaded is not None:
        return loaded
    with _lock:
        loaded = _models.get(name)
        if loaded is None:
            loaded = _models[name] = _load(name)
        return loaded


def _load(name: str) -> LoadedModel:
    from faster_whisper import WhisperModel

    device, compute_type = device_and_compute_type()
    threads = int(os.environ.get("TRANSCRIBE_CPU_THREADS", "0") or 0)
    try:
        model = WhisperModel(
            name,
            device=device,
            compute_type=compute_type,
            cpu_threads=threads,
            download_root=os.environ.get("TRANSCRIBE_DOWNLOAD_ROOT") or None,  # default: HF_HOME's hub cache
        )
    except Exception as exc:  # reported as a clean server_error; the next job retries
        raise HandlerError(
            f"Could not load the transcription model {name!r} on {device}/{compute_type} ({type(exc).__name__})",
            code="model_load_failed",
        ) from exc
    return LoadedModel(name, model, device, compute_type)


@dataclass
class Transcript:
    segments: list[Any]  # faster_whisper Segment objects, inside the audio's duration
    language: str
    language_probability: float
    duration: float


def batch_size() -> int:
    """``TRANSCRIBE_BATCH_SIZE``: > 0 runs long audio through faster-whisper's batched pipeline."""
    raw = os.environ.get("TRANSCRIBE_BATCH_SIZE", "").strip()
    return max(0, int(raw)) if raw.isdigit() else 0


def batched_min_seconds() -> float:
    """``TRANSCRIBE_BATCHED_MIN_S``: audio shorter than this decodes sequentially (default 60)."""
    raw = os.environ.get("TRANSCRIBE_BATCHED_MIN_S", "").strip()
    try:
        return float(raw) if raw else 60.0
    except ValueError:
        return 60.0


def transcribe(
    loaded: LoadedModel,
    audio: np.ndarray,
    options: dict[str, Any],
    on_progress: Callable[[float], None],
) -> Transcript:
    """Run one pass; ``on_progress`` gets 0..1 as segments arrive (segments are lazy).

    With ``TRANSCRIBE_BATCH_SIZE`` set, audio of at least ``TRANSCRIBE_BATCHED_MIN_S`` goes
    through ``BatchedInferencePipeline``: Silero VAD cuts it into speech chunks of up to 30 s
    that are decoded ``batch_size`` at a time (several times faster on a GPU for long files).
    Chunks are decoded independently, so ``condition_on_previous_text`` has no effect there,
    and VAD is always on (the batched pipeline needs it to cut audio over 30 s).
    """
    size = batch_size()
    if size > 0 and audio.shape[0] / SAMPLE_RATE >= batched_min_seconds():
        from faster_whisper import BatchedInferencePipeline

        pipeline = BatchedInferencePipeline(loaded.model)
        segments, info = pipeline.transcribe(audio, **{**options, "vad_filter": True}, batch_size=size)
    else:
        segments, info = loaded.model.transcribe(audio, **options)
    duration = float(info.duration) or 1e-9
    kept: list[Any] = []
    for segment in segments:
        # A segment starting after the audio ends was decoded from the 30 s window's padding.
        if segment.start >= duration:
            continue
        kept.append(segment)
        on_progress(min(1.0, float(segment.end) / duration))
    return Transcript(kept, str(info.language), float(info.language_probability), float(info.duration))
