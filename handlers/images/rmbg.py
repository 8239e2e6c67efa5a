"""``img-rmbg``: background removal with BEN2 (PramaLLC/BEN2's ONNX export) on ONNX Runtime.

Why ONNX Runtime and not a library: the BEN2 package is not on PyPI and its code needs
torchvision; rembg's BEN session preprocesses differently from BEN2's own code (mean 0.5,
std 1, the image scaled by its own maximum), so it would not serve the ``Ben2`` slug
faithfully. ONNX Runtime runs PramaLLC's own export with no torch at all; the pre- and
post-processing here are BEN2's reference inference:

1. RGB, resized to the network's input (1024²) with Lanczos, scaled to 0-1, normalised with
   the ImageNet mean and std;
2. the network's output is already a sigmoid mask; it is resized back to the picture's size
   (bilinear), then stretched to 0-1 by its own minimum and maximum;
3. the mask becomes the alpha channel of the original picture (an existing alpha channel is
   kept: the result is the product of both).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from handlers.common.errors import HandlerError
from handlers.images import pipeline as devices

DEFAULT_MODEL = "PramaLLC/BEN2"
DEFAULT_FILE = "BEN2_Base.onnx"
NATIVE_SIDE = 1024  # used when the export has dynamic input dimensions
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
logger = logging.getLogger("handlers.images")


def model_id() -> str:
    return os.environ.get("IMAGES_RMBG_MODEL", "").strip() or DEFAULT_MODEL


def onnx_path(name: str) -> Path:
    """An ``.onnx`` file, a directory holding one, or a hub repo (downloaded once into HF_HOME)."""
    path = Path(name)
    wanted = os.environ.get("IMAGES_RMBG_FILE", "").strip() or DEFAULT_FILE
    if path.is_file():
        return path
    if path.is_dir():
        if (path / wanted).is_file():
            return path / wanted
        found = sorted(path.glob("*.onnx"))
        if len(found) == 1:
            return found[0]
        raise FileNotFoundError(f"{name} holds {len(found)} .onnx files; set IMAGES_RMBG_FILE")
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(name, wanted))


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.startswith("cuda") and "CUDAExecutionProvider" in available:
        if hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # the CUDA/cuDNN of the nvidia-* wheels (torch's), not a system CUDA
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class BackgroundRemover:
    """One ONNX Runtime session. Its ``run`` is thread-safe; the lock keeps one image at a time
    so two jobs do not each take the whole GPU's workspace."""

    def __init__(self, session: Any, name: str) -> None:
        self.session = session
        self.name = name
        spec = session.get_inputs()[0]
        self.input_name = spec.name
        dims = [d for d in spec.shape[2:4] if isinstance(d, int) and d > 0]
        self.side = (dims[1], dims[0]) if len(dims) == 2 else (NATIVE_SIDE, NATIVE_SIDE)  # (w, h)
        self._lock = threading.Lock()

    def mask(self, image: Any) -> Any:
        """BEN2's alpha matte for ``image`` (PIL), as an ``L`` image of the same size."""
        import numpy as np
        from PIL import Image

        resized = image.convert("RGB").resize(self.side, Image.Resampling.LANCZOS)
        unit = np.asarray(resized, dtype=np.float32) / 255.0
        normalised = (unit - np.array(_MEAN, dtype=np.float32)) / np.array(_STD, dtype=np.float32)
        batch = np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], dtype=np.float32)
        with self._lock:
            prediction = self.session.run(None, {self.input_name: batch})[0]
        matte = np.asarray(prediction, dtype=np.float32).reshape(prediction.shape[-2:])
        # Resize first, then stretch to 0-1 (BEN2's postprocess_image does it in this order).
        full = np.asarray(Image.fromarray(matte, "F").resize(image.size, Image.Resampling.BILINEAR))
        low, high = float(full.min()), float(full.max())
        scaled = (full - low) / (high - low) if high - low > 1e-6 else np.clip(full, 0.0, 1.0)
        return Image.fromarray((scaled * 255.0).astype(np.uint8), "L")

    def remove(self, image: Any) -> Any:
        """``image`` as RGBA whose alpha is the matte (times the alpha it already had)."""
        from PIL import ImageChops

        matte = self.mask(image)
        if image.mode == "RGBA":
            matte = ImageChops.multiply(matte, image.getchannel("A"))
        result = image.convert("RGBA")
        result.putalpha(matte)
        return result


def load_remover(name: str) -> BackgroundRemover:
    import onnxruntime as ort

    device = devices.choose_device()
    logger.info("loading background-removal model %s on %s", name, device)
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        session = ort.InferenceSession(str(onnx_path(name)), sess_options=options, providers=_providers(device))
    except Exception as exc:
        raise HandlerError(
            f"Could not load background-removal model {name!r}: {type(exc).__name__}: {exc}",
            code="model_load_failed",
        ) from exc
    return BackgroundRemover(session, name)


_remover: BackgroundRemover | None = None
_lock = threading.Lock()


def get_remover() -> BackgroundRemover:
    """The worker's remover, loaded on first use (and again when ``IMAGES_RMBG_MODEL`` changes)."""
    global _remover
    name = model_id()
    with _lock:
        if _remover is None or _remover.name != name:
            _remover = None
            _remover = load_remover(name)
        return _remover
