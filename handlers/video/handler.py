"""RunPod handler for txt2video, img2video and aud2video in the media dialect (design.md §6).

Input and output are documented in handlers/README.md. Failures come back as
``{"error": <JSON string of {"type", "code", "message", "param"}>}``; prompts, images and
videos are never logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from handlers.common.cancel import CancelToken, run_in_thread
from handlers.common.errors import HandlerError
from handlers.common.failures import unexpected_failure
from handlers.common.progress import report_progress
from handlers.common.serve import start
from handlers.common.validation import parse_input
from handlers.video import encode, engine, output, preview
from handlers.video.frames import fit, load_image
from handlers.video.schema import Limits, VideoInput, check

logger = logging.getLogger("handlers.video")
_PROGRESS_INTERVAL_S = 0.5  # RunPod posts every update over HTTP
_PREVIEW_INTERVAL_S = 2.0  # a preview costs a one-frame VAE decode
_DENOISE_SHARE = 90.0  # progress after the last step; decoding and encoding follow


class _StepReporter:
    """After each denoising step: the cancel check, progress, and now and then a preview."""

    def __init__(self, job: dict[str, Any], cancel: CancelToken, plan: engine.Plan) -> None:
        self.job = job
        self.cancel = cancel
        self.plan = plan
        self.last_report = float("-inf")
        self.last_preview = float("-inf")

    def __call__(self, pipe: Any, step: int, total: int, latents: Any) -> None:
        self.cancel.check()  # raised through diffusers: the pipeline call ends here
        now = time.monotonic()
        final = step + 1 >= total
        if not (step == 0 or final or now - self.last_report >= _PROGRESS_INTERVAL_S):
            return
        self.last_report = now
        image = None
        if step == 0 or final or now - self.last_preview >= _PREVIEW_INTERVAL_S:
            self.last_preview = now
            image = preview.render(pipe, latents, self.plan.width, self.plan.height)
        report_progress(self.job, round(_DENOISE_SHARE * min(1.0, (step + 1) / total), 1), image)


def _generate(job: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
    params = parse_input(job.get("input"), VideoInput)
    limits = Limits.from_env()
    check(params, limits)  # before anything loads or downloads: bad input fails fast
    first = load_image(params.first_frame_image, "first_frame_image") if params.first_frame_image else None
    last = load_image(params.last_frame_image, "last_frame_image") if params.last_frame_image else None

    worker = engine.get_engine()
    plan = worker.plan(params, limits)
    first = fit(first, plan.width, plan.height) if first is not None else None
    last = fit(last, plan.width, plan.height) if last is not None else None
    started = time.perf_counter()
    report_progress(job, 0.0)
    frames = worker.generate(plan, first, last, _StepReporter(job, cancel, plan))
    cancel.check()
    report_progress(job, 95.0)
    blob = encode.mp4(frames, plan.fps)
    file = output.deliver(str(job.get("id") or "local"), blob, limits.max_inline_bytes)
    logger.info(
        "generated %d frames at %dx%d in %.2f s (%s, %d steps, weights %s)",
        plan.frames, plan.width, plan.height, time.perf_counter() - started, worker.name, plan.steps, worker.storage,
    )
    result: dict[str, Any] = {
        "files": [file],
        "duration_s": round(plan.frames / plan.fps, 3),
        "seed": plan.seed,
        "width": plan.width,
        "height": plan.height,
        "frames": plan.frames,
        "fps": plan.fps,
        "steps": plan.steps,
        "model": params.model or worker.name,
    }
    if plan.ignored:
        result["ignored"] = plan.ignored
    return result


async def handler(job: dict[str, Any]) -> dict[str, Any]:
    """Generate one job's video in a thread; a cancelled job stops at the next denoising step."""
    try:
        return await run_in_thread(lambda cancel: _generate(job, cancel))
    except HandlerError as exc:
        return exc.to_output()
    except Exception as exc:
        return unexpected_failure(
            exc, logger, work="Video generation", oom="Out of GPU memory; ask for fewer frames or a smaller size",
            code="generation_failed",
        )


if __name__ == "__main__":
    start(handler, preload=engine.get_engine, logger=logger)
