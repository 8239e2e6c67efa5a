"""RunPod handler for text-to-image: ``handler(job)`` in the worker-sdxl dialect.

Input and output are documented in handlers/README.md. Failures come back as
``{"error": <JSON string of {"type", "code", "message", "param"}>}`` so the job ends FAILED with a message
the gateway can show; prompts and images are never logged.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

from handlers.common.cancel import CancelToken, run_in_thread
from handlers.common.errors import HandlerError, server_error
from handlers.common.progress import report_progress
from handlers.common.validation import parse_input
from handlers.images import engine, output
from handlers.images.schema import ImagesInput, Limits, check_limits, output_format

logger = logging.getLogger("handlers.images")


def _generate(job: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
    params = parse_input(job.get("input"), ImagesInput)
    limits = Limits.from_env()
    check_limits(params, limits)  # before the model loads: bad input fails fast
    fmt = output_format(params.output_format)

    worker = engine.get_engine()
    plan = worker.plan(params, limits)
    started = time.perf_counter()
    images = worker.generate(plan, lambda pct: report_progress(job, pct), cancel)
    blobs = [output.encode(image, fmt) for image in images]
    urls = output.deliver(str(job.get("id") or "local"), blobs, fmt, limits.max_inline_bytes)
    result: dict[str, Any] = {
        "images": urls,
        "image_url": urls[0],  # worker-sdxl's field, for clients written against it
        "seed": plan.seed,
        "seeds": [plan.seed + i for i in range(plan.num_images)],
        "width": plan.width,
        "height": plan.height,
        "num_inference_steps": plan.steps,
        "output_format": fmt,
        "model": params.model or worker.name,
        "generation_time_s": round(time.perf_counter() - started, 3),
    }
    if plan.ignored:
        result["ignored"] = plan.ignored  # inputs this model's pipeline cannot use
    return result


async def handler(job: dict[str, Any]) -> dict[str, Any]:
    """Generate the images one job asks for, in a thread; a cancelled job stops at the next
    denoising step."""
    try:
        return await run_in_thread(lambda cancel: _generate(job, cancel))
    except HandlerError as exc:
        return exc.to_output()
    except Exception as exc:
        return _unexpected(exc)


def _unexpected(exc: Exception) -> dict[str, Any]:
    if _is_out_of_memory(exc):
        _free_gpu_memory()
        return server_error("Out of GPU memory; ask for fewer or smaller images", code="out_of_memory")
    # Only the type and frames are logged: an exception message could quote the input.
    logger.error("image generation failed: %s\n%s", type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
    return server_error(f"Image generation failed ({type(exc).__name__})", code="generation_failed")


def _is_out_of_memory(exc: Exception) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def _free_gpu_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        return


if __name__ == "__main__":
    import os

    # The runpod SDK logs every handler output at its default level, DEBUG: images would land
    # in the worker logs. INFO keeps its job lifecycle lines only.
    os.environ.setdefault("RUNPOD_LOG_LEVEL", "INFO")
    import runpod

    logging.basicConfig(level=logging.INFO)
    try:
        engine.get_engine()  # load before taking jobs, so FlashBoot snapshots a warm worker
    except HandlerError as exc:
        logger.error("%s", exc.message)  # the first job reports it again and retries the load
    runpod.serverless.start({"handler": handler})
