"""Loading the LTX-Video pipelines once per worker: device, dtype, FP8 weight storage.

One set of weights serves all tasks: ``LTXPipeline`` (txt2video) is loaded from the hub id
or directory, and the image-to-video and conditioning pipelines are built from the same
components with ``from_pipe`` (no second copy in memory). torch and diffusers are imported
inside the functions so importing the handler stays cheap.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from handlers.common.errors import HandlerError

DEFAULT_MODEL = "Lightricks/LTX-Video-0.9.8-13B-distilled"
logger = logging.getLogger("handlers.video")

_DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
           "bfloat16": "bfloat16", "bf16": "bfloat16"}
# A catalogue slug or repo id that names its weight format (Ltxv_13B_..._FP8, ...-int8).
_VARIANT = re.compile(r"(?:^|[-_./])(fp8|int8)(?:$|[-_./])", re.IGNORECASE)


def model_id() -> str:
    return os.environ.get("VIDEO_MODEL", "").strip() or DEFAULT_MODEL


def choose_device() -> str:
    import torch

    wanted = os.environ.get("VIDEO_DEVICE", "").strip().lower()
    if wanted and wanted != "auto":
        return wanted
    return "cuda" if torch.cuda.is_available() else "cpu"


def choose_dtype(device: str) -> Any:
    """bf16 on GPUs that have it (LTX is trained in bf16), fp16 on older GPUs, fp32 on CPU."""
    import torch

    wanted = os.environ.get("VIDEO_DTYPE", "").strip().lower()
    if wanted and wanted != "auto":
        if wanted not in _DTYPES:
            names = ", ".join(sorted(_DTYPES))
            raise HandlerError(f"VIDEO_DTYPE must be one of auto, {names}", code="bad_configuration")
        return getattr(torch, _DTYPES[wanted])
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def weight_storage(name: str, device: str) -> str:
    """``VIDEO_WEIGHTS`` (``auto``, ``native``, ``fp8``); ``auto`` reads the model id.

    ``fp8``: the transformer's weights are stored as float8_e4m3fn and upcast layer by layer
    for compute (diffusers' layerwise casting): about half the memory of bf16, GPU only.
    An ``int8`` id is served with native weights: this worker has no INT8 kernels.
    """
    wanted = os.environ.get("VIDEO_WEIGHTS", "").strip().lower() or "auto"
    if wanted not in ("auto", "native", "fp8"):
        raise HandlerError("VIDEO_WEIGHTS must be one of auto, native, fp8", code="bad_configuration")
    if wanted == "auto":
        match = _VARIANT.search(name)
        wanted = "fp8" if match and match.group(1).lower() == "fp8" else "native"
    if wanted == "fp8" and not device.startswith("cuda"):
        logger.info("fp8 weight storage needs a GPU; %s keeps native weights on %s", name, device)
        return "native"
    return wanted


@dataclass
class Loaded:
    """The text-to-video pipeline and the weight storage it runs with."""

    pipe: Any
    storage: str
    device: str


def _quiet_libraries() -> None:
    # Library warnings can quote a truncated prompt; prompts must never reach logs.
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def load(name: str) -> Loaded:
    """Load ``name`` (hub id or local directory) once, ready to generate on the chosen device."""
    from diffusers import DiffusionPipeline

    _quiet_libraries()
    device = choose_device()
    dtype = choose_dtype(device)
    storage = weight_storage(name, device)
    logger.info("loading video model %s on %s (%s, weights %s)", name, device, dtype, storage)
    try:
        pipe = DiffusionPipeline.from_pretrained(name, dtype=dtype)  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise HandlerError(
            f"Could not load video model {name!r}: {type(exc).__name__}: {exc}", code="model_load_failed"
        ) from exc
    if not hasattr(pipe, "transformer") or not hasattr(pipe, "vae"):
        raise HandlerError(
            f"{type(pipe).__name__} is not an LTX-Video class pipeline (transformer + video VAE)",
            code="model_load_failed",
        )
    if storage == "fp8":
        import torch

        pipe.transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
    offload = os.environ.get("VIDEO_CPU_OFFLOAD", "").strip().lower() in ("1", "true", "yes")
    if offload and device.startswith("cuda"):
        pipe.enable_model_cpu_offload()
    else:
        pipe.to(device)
    if hasattr(pipe.vae, "enable_tiling") and os.environ.get("VIDEO_VAE_TILING", "1").strip() not in ("0", "false"):
        pipe.vae.enable_tiling()  # decoding 100+ frames at 768x512 otherwise needs tens of GB
    pipe.set_progress_bar_config(disable=True)
    return Loaded(pipe, storage, device)


def derived(pipe: Any, kind: str) -> Any:
    """The ``img2video`` or ``condition`` pipeline on the same components, or None if this
    diffusers or this model family has none."""
    import diffusers

    names = {"img2video": ("LTXImageToVideoPipeline",), "condition": ("LTXConditionPipeline",)}[kind]
    if type(pipe).__name__.startswith("LTX2"):
        names = {"img2video": ("LTX2ImageToVideoPipeline",), "condition": ("LTX2ConditionPipeline",)}[kind]
    for class_name in names:
        cls = getattr(diffusers, class_name, None)
        if cls is None:
            continue
        try:
            derived_pipe = cls.from_pipe(pipe)
        except Exception as exc:  # components this class cannot use
            logger.info("%s unavailable for this model (%s)", class_name, type(exc).__name__)
            return None
        derived_pipe.set_progress_bar_config(disable=True)
        return derived_pipe
    return None
