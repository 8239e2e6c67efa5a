"""Download the weights of the tasks an image serves, at build time (``BAKE_MODEL=1``).

``python -m handlers.images.bake`` reads the same env as the worker (``IMAGES_TASKS``,
``IMAGES_MODEL``, ``IMAGES_EDIT_MODEL``, ``IMAGES_RMBG_MODEL``/``_FILE``,
``IMAGES_UPSCALE_MODEL``/``_FILE``) and fetches only the files each task loads into
``HF_HOME``; the image then runs with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import os
from pathlib import Path


def main() -> None:
    from diffusers import DiffusionPipeline
    from huggingface_hub import hf_hub_download

    from handlers.images import pipeline, rmbg, upscale

    token = os.environ.get("HF_TOKEN") or None
    for task in {t.strip() for t in os.environ.get("IMAGES_TASKS", "txt2img").split(",") if t.strip()}:
        if task in ("txt2img", "img2img"):
            name = pipeline.model_id() if task == "txt2img" else pipeline.edit_model_id()
            # Only the files the pipeline loads (FLUX's repo also carries a 23 GB single file).
            DiffusionPipeline.download(name, token=token)  # type: ignore[no-untyped-call]
        elif task == "img-rmbg" and not Path(rmbg.model_id()).exists():
            hf_hub_download(rmbg.model_id(), os.environ.get("IMAGES_RMBG_FILE") or rmbg.DEFAULT_FILE, token=token)
        elif task == "img-upscale" and not Path(upscale.model_id()).exists():
            file = os.environ.get("IMAGES_UPSCALE_FILE") or upscale.DEFAULT_FILE
            hf_hub_download(upscale.model_id(), file, token=token)


if __name__ == "__main__":
    main()
