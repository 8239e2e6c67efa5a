"""A preview frame while the video denoises: the first latent frame through the VAE.

LTX packs latents frame by frame, so the first ``latent_h * latent_w`` tokens are the
first frame (also for the image-to-video and conditioning pipelines, whose extra tokens
come after). Decoding that one latent frame costs a small share of the final decode; the
result is a small JPEG data URI, sent with the progress update (RunPod posts each update
over HTTP, so it stays a few kB).
"""

from __future__ import annotations

import base64
import io
import logging
from typing import Any

logger = logging.getLogger("handlers.video")
PREVIEW_MAX_SIDE = 256
_QUALITY = 70


def first_frame(pipe: Any, latents: Any, width: int, height: int) -> Any:
    """The first frame of the current latents as a PIL image (decoded noisy early on)."""
    import torch
    from PIL import Image

    ratio = int(pipe.vae_spatial_compression_ratio)
    patch = int(getattr(pipe, "transformer_spatial_patch_size", 1))
    if patch != 1 or int(getattr(pipe, "transformer_temporal_patch_size", 1)) != 1:
        raise ValueError("preview needs unpatched latents")
    rows, cols = height // ratio, width // ratio
    with torch.no_grad():
        tokens = latents[:1, : rows * cols]
        frame = tokens.reshape(1, rows, cols, -1).permute(0, 3, 1, 2).unsqueeze(2)  # (1, C, 1, h, w)
        vae = pipe.vae
        frame = pipe._denormalize_latents(frame, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
        timestep = None
        if getattr(vae.config, "timestep_conditioning", False):
            timestep = torch.zeros(1, device=frame.device, dtype=frame.dtype)
        pixels = vae.decode(frame.to(vae.dtype), timestep, return_dict=False)[0]  # (1, 3, 1, H, W) in [-1, 1]
        image = ((pixels[0, :, 0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(image)


def data_uri(image: Any) -> str:
    image = image.convert("RGB")
    image.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render(pipe: Any, latents: Any, width: int, height: int) -> str | None:
    """The preview data URI, or None when this pipeline's latents cannot be previewed."""
    if latents is None:
        return None
    try:
        return data_uri(first_frame(pipe, latents, width, height))
    except Exception as exc:  # a preview is a nicety: never fail the job for it
        logger.info("no preview for %s (%s)", type(pipe).__name__, type(exc).__name__)
        return None
