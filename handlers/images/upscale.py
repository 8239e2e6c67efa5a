"""``img-upscale``: Real-ESRGAN super-resolution, tiled so large inputs fit in GPU memory.

The network (``rrdbnet.py``) runs on overlapping tiles: each tile is cut with
``IMAGES_UPSCALE_TILE_PAD`` pixels of context on every side, upscaled, and only its own
region is kept, so seams do not show and memory is bounded by the tile, not the image
(a 2048² input is 16 tiles of 512², each ~1 GB of activations in fp16). Output stays on the
CPU. A ``scale`` below the model's own factor upscales fully, then resizes down with
Lanczos (Real-ESRGAN's ``outscale``). Alpha is resized with Lanczos, not by the network.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handlers.common.cancel import CancelToken
from handlers.common.errors import HandlerError, InvalidInput
from handlers.images import pipeline as devices

DEFAULT_MODEL = "ai-forever/Real-ESRGAN"
DEFAULT_FILE = "RealESRGAN_x4.pth"
MAX_OUTPUT_SIDE = 8192  # a 2048² input at x4
logger = logging.getLogger("handlers.images")


def model_id() -> str:
    return os.environ.get("IMAGES_UPSCALE_MODEL", "").strip() or DEFAULT_MODEL


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def max_output_side() -> int:
    return _env_int("IMAGES_UPSCALE_MAX_OUTPUT_SIDE", MAX_OUTPUT_SIDE)


def weights_path(name: str) -> Path:
    """A ``.pth``/``.safetensors`` file, a directory holding one, or a hub repo (cached download)."""
    path = Path(name)
    wanted = os.environ.get("IMAGES_UPSCALE_FILE", "").strip() or DEFAULT_FILE
    if path.is_file():
        return path
    if path.is_dir():
        if (path / wanted).is_file():
            return path / wanted
        found = sorted(p for p in path.iterdir() if p.suffix in (".pth", ".safetensors"))
        if len(found) == 1:
            return found[0]
        raise FileNotFoundError(f"{name} holds {len(found)} weight files; set IMAGES_UPSCALE_FILE")
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(name, wanted))


def _read_weights(path: Path) -> Any:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    return torch.load(str(path), map_location="cpu", weights_only=True)  # no pickled code runs


class Upscaler:
    """One loaded RRDBNet. Calls are serialised: one image's tiles at a time on the device."""

    def __init__(self, model: Any, name: str, device: str, dtype: Any) -> None:
        self.model = model
        self.name = name
        self.device = device
        self.dtype = dtype
        self.scale = int(model.config.scale)
        self._lock = threading.Lock()

    def output_size(self, width: int, height: int, scale: int | None) -> tuple[int, int]:
        """The result's size; ``InvalidInput`` before any work when it is over the limit."""
        factor = scale or self.scale
        if factor > self.scale:
            raise InvalidInput("scale", f"scale must be at most {self.scale} for this model")
        out_w, out_h = width * factor, height * factor
        limit = max_output_side()
        if max(out_w, out_h) > limit:
            raise InvalidInput(
                "image",
                f"image is {width}x{height}; upscaled x{factor} it would be {out_w}x{out_h}, "
                f"over the {limit}-pixel side limit",
                code="image_too_large",
            )
        return out_w, out_h

    def upscale(
        self,
        image: Any,
        scale: int | None,
        on_progress: Callable[[float], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> Any:
        """``image`` (RGB or RGBA PIL) upscaled by ``scale`` (default: the model's factor)."""
        import numpy as np
        from PIL import Image

        size = self.output_size(image.width, image.height, scale)
        alpha = image.getchannel("A") if image.mode == "RGBA" else None
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        with self._lock:
            out = self._tiled(rgb, on_progress, cancel)
        result = Image.fromarray(out, "RGB")
        if result.size != size:
            result = result.resize(size, Image.Resampling.LANCZOS)
        if alpha is not None:
            result.putalpha(alpha.resize(size, Image.Resampling.LANCZOS))
        return result

    def _tiled(self, rgb: Any, on_progress: Callable[[float], None] | None, cancel: CancelToken | None) -> Any:
        import numpy as np
        import torch

        # x2/x1 models pixel-unshuffle their input: every tile edge must fall on that grid, so
        # the image is edge-padded to it (and cropped back at the end), tile and pad rounded.
        grid = int(self.model.config.unshuffle)
        tile = max(32, _env_int("IMAGES_UPSCALE_TILE", 512)) // grid * grid
        pad = max(0, _env_int("IMAGES_UPSCALE_TILE_PAD", 16)) // grid * grid
        real_h, real_w = rgb.shape[:2]
        rgb = np.pad(rgb, ((0, -real_h % grid), (0, -real_w % grid), (0, 0)), mode="edge")
        height, width = rgb.shape[:2]
        s = self.scale
        out = np.empty((height * s, width * s, 3), dtype=np.uint8)
        source = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0)  # 1x3xHxW uint8, on the CPU
        rows, cols = math.ceil(height / tile), math.ceil(width / tile)
        done = 0
        with torch.inference_mode():
            for row in range(rows):
                for col in range(cols):
                    if cancel is not None:
                        cancel.check()
                    top, left = row * tile, col * tile
                    bottom, right = min(top + tile, height), min(left + tile, width)
                    ptop, pleft = max(top - pad, 0), max(left - pad, 0)
                    pbottom, pright = min(bottom + pad, height), min(right + pad, width)
                    piece = source[:, :, ptop:pbottom, pleft:pright].to(self.device, self.dtype) / 255.0
                    result = self.model(piece).clamp_(0, 1)
                    y0, x0 = (top - ptop) * s, (left - pleft) * s
                    kept = result[0, :, y0 : y0 + (bottom - top) * s, x0 : x0 + (right - left) * s]
                    pixels = (kept.float() * 255.0).round_().byte().permute(1, 2, 0).cpu().numpy()
                    out[top * s : bottom * s, left * s : right * s] = pixels
                    done += 1
                    if on_progress is not None:
                        on_progress(round(95.0 * done / (rows * cols), 1))
        return out[: real_h * s, : real_w * s]


def load_upscaler(name: str) -> Upscaler:
    import torch

    from handlers.images.rrdbnet import from_state_dict

    device = devices.choose_device()
    # Real-ESRGAN runs in fp16 on GPUs (its own default); bf16 loses visible precision here.
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    if os.environ.get("IMAGES_DTYPE", "").strip().lower() not in ("", "auto"):
        dtype = devices.choose_dtype(device)
    logger.info("loading upscale model %s on %s (%s)", name, device, dtype)
    try:
        model = from_state_dict(_read_weights(weights_path(name)))
    except Exception as exc:
        raise HandlerError(
            f"Could not load upscale model {name!r}: {type(exc).__name__}: {exc}", code="model_load_failed"
        ) from exc
    return Upscaler(model.to(device, dtype), name, device, dtype)


_upscaler: Upscaler | None = None
_lock = threading.Lock()


def get_upscaler() -> Upscaler:
    """The worker's upscaler, loaded on first use (and again when ``IMAGES_UPSCALE_MODEL`` changes)."""
    global _upscaler
    name = model_id()
    with _lock:
        if _upscaler is None or _upscaler.name != name:
            _upscaler = None
            _upscaler = load_upscaler(name)
        return _upscaler
