"""Progress reports from inside a job.

On RunPod this is ``runpod.serverless.progress_update`` (clients see it as ``output`` of an
IN_PROGRESS status). The gateway's emulator puts a callable under ``_emulator_progress``
in the job dict instead, because there is no RunPod job server to post to.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

EMULATOR_PROGRESS_KEY = "_emulator_progress"


def report_progress(job: dict[str, Any], progress: float, preview: str | None = None) -> None:
    """Publish ``{"progress": 0-100, "preview"?: data-URI}`` for ``job``; never raises."""
    update: dict[str, Any] = {"progress": max(0.0, min(100.0, float(progress)))}
    if preview is not None:
        update["preview"] = preview
    callback: Callable[[dict[str, Any]], None] | None = job.get(EMULATOR_PROGRESS_KEY)
    try:
        if callback is not None:
            callback(update)
            return
        if not os.environ.get("RUNPOD_WEBHOOK_PING") and not os.environ.get("RUNPOD_WEBHOOK_GET_JOB"):
            return  # neither on RunPod nor in the emulator: nobody to tell
        from runpod.serverless import progress_update  # imported lazily: only on RunPod

        progress_update(job, update)
    except Exception:
        return


def throttled(job: dict[str, Any], interval_s: float) -> Callable[[float], None]:
    """A reporter for ``job`` that publishes at most once per ``interval_s`` (RunPod posts
    every update over HTTP); the first report always goes out."""
    last = -interval_s

    def report(percent: float) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= interval_s:
            last = now
            report_progress(job, round(percent, 1))

    return report
