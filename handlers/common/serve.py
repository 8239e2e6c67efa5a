"""Starting a worker on RunPod (``python -m handlers.<worker>.handler``).

The runpod SDK logs at DEBUG by default, and at DEBUG it logs job inputs and outputs: prompts,
images, audio, embeddings and transcripts would land in the worker's logs. So the level is INFO
unless the operator sets ``RUNPOD_LOG_LEVEL``; the SDK reads it once, when first imported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from handlers.common.errors import HandlerError


def quiet_sdk_logs() -> None:
    """Keep the runpod SDK at INFO; call before anything imports ``runpod``."""
    os.environ.setdefault("RUNPOD_LOG_LEVEL", "INFO")


def start(handler: Callable[..., Any], *, preload: Callable[[], object], logger: logging.Logger) -> None:
    """Load the model, then take jobs. A failed load is logged here and reported by every job
    (each retries it), so the endpoint shows why instead of crash-looping."""
    quiet_sdk_logs()
    import runpod

    logging.basicConfig(level=logging.INFO)
    try:
        preload()  # before taking jobs, so FlashBoot snapshots a warm worker
    except HandlerError as exc:
        logger.error("%s", exc.message)
    runpod.serverless.start({"handler": handler})
