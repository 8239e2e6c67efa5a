"""Loading the diffusers pipeline: device, dtype, offload, quiet logging.

torch and diffusers are imported inside the functions so that importing the handler (for
example by the gateway's emulator to resolve ``handlers.images.handler:handler``) stays cheap.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from handlers.common.errors import HandlerError

DEFAULT_MODEL = "black-forest-labs/FLUX.1-schnell"
logger = logging.getLogger("handlers.images")

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def model_id() -> str:
    return os.environ.get("IMAGES_MODEL", "").strip() or DEFAULT_MODEL


def edit_model_id() -> str:
    """The img2img model: ``IMAGES_EDIT_MODEL``, else the txt2img model."""
    return os.environ.get("IMAGES_EDIT_MODEL", "").strip() or model_id()


def choose_device() -> str:
    import torch

    wanted = os.environ.get("IMAGES_DEVICE", "").strip().lower()
    if wanted and wanted != "auto":
        return wanted
    return "cuda" if torch.cuda.is_available() else "cpu"


def choose_dtype(device: str) -> Any:
    """bf16 on GPUs that have it (Flux is trained in bf16), fp16 on older GPUs, fp32 on CPU."""
    import torch

    wanted = os.environ.get("IMAGES_DTYPE", "").strip().lower()
    if wanted and wanted != "auto":
        if wanted not in _DTYPES:
            raise HandlerError(
                f"IMAGES_DTYPE must be one of auto, {', '.join(sorted(set(_DTYPES)))}", code="bad_configuration"
            )
        return getattr(torch, _DTYPES[wanted])
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # Half precision on CPU is slow or unsupported for many ops; fp32 is the safe choice.
    return torch.float32


def _quiet_libraries() -> None:
    # diffusers warns with the *removed text* when CLIP truncates a long prompt; prompts must
    # never reach logs, so library warnings are silenced (errors still surface as exceptions).
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def quantization(name: str) -> str | None:
    """``nf4`` when ``IMAGES_QUANTIZE`` says so, or when it is unset and the model id names NF4."""
    wanted = os.environ.get("IMAGES_QUANTIZE", "").strip().lower()
    if wanted in ("", "auto"):
        wanted = "nf4" if "nf4" in name.lower().replace("-", "_").split("/")[-1].split("_") else "none"
    if wanted not in ("none", "nf4"):
        raise HandlerError("IMAGES_QUANTIZE must be auto, none or nf4", code="bad_configuration")
    return None if wanted == "none" else wanted


def _quantization_config(dtype: Any) -> Any:
    """bitsandbytes 4-bit NF4 for the big components (the denoiser and the text encoder)."""
    from diffusers.quantizers import PipelineQuantizationConfig  # type: ignore[attr-defined]

    return PipelineQuantizationConfig(
        quant_backend="bitsandbytes_4bit",
        quant_kwargs={"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": dtype},
        components_to_quantize=["transformer", "text_encoder"],
    )


def _options(name: str, device: str, *, allow_quantization: bool = False) -> dict[str, Any]:
    options: dict[str, Any] = {"dtype": choose_dtype(device)}
    variant = os.environ.get("IMAGES_VARIANT", "").strip()
    if variant:
        options["variant"] = variant  # e.g. "fp16" repos that ship half-size weights
    if allow_quantization and quantization(name) == "nf4":
        if not device.startswith("cuda"):
            raise HandlerError(
                "NF4 quantization (IMAGES_QUANTIZE / a model id naming nf4) needs a CUDA GPU", code="bad_configuration"
            )
        options["quantization_config"] = _quantization_config(options["dtype"])
    return options


def _failed(name: str, exc: Exception) -> HandlerError:
    return HandlerError(f"Could not load images model {name!r}: {type(exc).__name__}: {exc}", code="model_load_failed")


def load_pipeline(name: str) -> Any:
    """Load ``name`` (HF id or local directory) once, ready to generate on the chosen device."""
    from diffusers import AutoPipelineForText2Image, DiffusionPipeline

    _quiet_libraries()
    device = choose_device()
    options = _options(name, device)
    logger.info("loading images model %s on %s (%s)", name, device, options["dtype"])
    try:
        try:
            pipe = AutoPipelineForText2Image.from_pretrained(name, **options)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            if "AutoPipeline" not in str(exc):
                raise
            # AutoPipeline only maps known families; any text-to-image pipeline class still works.
            pipe = DiffusionPipeline.from_pretrained(name, **options)  # type: ignore[no-untyped-call]
    except HandlerError:
        raise
    except Exception as exc:
        raise _failed(name, exc) from exc
    return _place(pipe, device)


def load_edit_pipeline(name: str) -> Any:
    """The img2img pipeline for ``name``: an editing pipeline as saved, or a text-to-image
    checkpoint's img2img twin. NF4 (bitsandbytes) on CUDA when ``quantization`` says so."""
    from diffusers import DiffusionPipeline

    _quiet_libraries()
    device = choose_device()
    options = _options(name, device, allow_quantization=True)
    logger.info("loading images edit model %s on %s (%s)", name, device, options["dtype"])
    try:
        pipe = image_to_image(DiffusionPipeline.from_pretrained(name, **options))  # type: ignore[no-untyped-call]
    except HandlerError:
        raise
    except Exception as exc:
        raise _failed(name, exc) from exc
    return _place(pipe, device)


def image_to_image(pipe: Any) -> Any:
    """``pipe`` itself when it takes pictures, else its img2img twin sharing the same modules."""
    import inspect

    from diffusers import AutoPipelineForImage2Image

    if "image" in inspect.signature(pipe.__call__).parameters:
        return pipe
    try:
        twin = AutoPipelineForImage2Image.from_pipe(pipe)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise HandlerError(
            f"{type(pipe).__name__} has no image-to-image variant; set IMAGES_EDIT_MODEL to an editing model",
            code="model_load_failed",
        ) from exc
    twin.set_progress_bar_config(disable=True)
    return twin


def _place(pipe: Any, device: str) -> Any:
    """Move to the device, or offload; diffusers leaves 4-bit bitsandbytes weights where they are."""
    offload = os.environ.get("IMAGES_CPU_OFFLOAD", "").strip().lower() in ("1", "true", "yes")
    if offload and device.startswith("cuda"):
        # Lets Flux (~34 GB in bf16) run on 24 GB cards at some cost in speed.
        pipe.enable_model_cpu_offload()
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
