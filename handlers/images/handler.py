"""RunPod handler for the image tasks: ``handler(job)`` in the worker-sdxl dialect plus ``task``.

Input and output are documented in handlers/README.md. Failures come back as
``{"error": <JSON string of {"type", "code", "message", "param"}>}`` so the job ends FAILED with a message
the gateway can show; prompts and images are never logged.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from handlers.common.cancel import CancelToken, run_in_thread
from handlers.common.errors import HandlerError
from handlers.common.failures import unexpected_failure
from handlers.common.serve import start
from handlers.images import edit, engine, rmbg, tasks, upscale

logger = logging.getLogger("handlers.images")


def _run(job: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
    return tasks.RUNNERS[tasks.task_of(job.get("input"))](job, cancel)


async def handler(job: dict[str, Any]) -> dict[str, Any]:
    """Run the task one job asks for (txt2img, img2img, img-rmbg, img-upscale) in a thread; a
    cancelled job stops at the next denoising step or tile."""
    try:
        return await run_in_thread(lambda cancel: _run(job, cancel))
    except HandlerError as exc:
        return exc.to_output()
    except Exception as exc:
        return unexpected_failure(
            exc, logger, work="Image generation", oom="Out of GPU memory; ask for fewer or smaller images",
            code="generation_failed",
        )


_PRELOADERS = {
    "txt2img": engine.get_engine,
    "img2img": edit.get_edit_engine,
    "img-rmbg": rmbg.get_remover,
    "img-upscale": upscale.get_upscaler,
}


def preload() -> None:
    """Load the models of the tasks this endpoint serves (``IMAGES_TASKS``, default txt2img)."""
    for task in os.environ.get("IMAGES_TASKS", "txt2img").split(","):
        loader = _PRELOADERS.get(task.strip())
        if loader is None:
            logger.error("IMAGES_TASKS names an unknown task; known: %s", ", ".join(_PRELOADERS))
            continue
        try:
            loader()
        except HandlerError as exc:
            logger.error("%s", exc.message)  # the first job reports it again and retries the load


if __name__ == "__main__":
    start(handler, preload=preload, logger=logger)
