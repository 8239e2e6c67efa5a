"""The image worker the realtime tests run in the emulator: it reports progress with a preview."""

from __future__ import annotations

import time
from typing import Any

from handlers.common.progress import report_progress

PREVIEW = "data:image/png;base64,cHJldmlldw=="


def painter(job: dict[str, Any]) -> dict[str, Any]:
    """``prompt``: "fail" fails; otherwise progress 45.5 with a preview, a pause, then an image
    ("steps": progress 80 and another pause before it)."""
    prompt = str(job["input"].get("prompt", ""))
    if prompt == "fail":
        return {"error": "the painter refused"}
    report_progress(job, 45.5, PREVIEW)
    time.sleep(2.6)  # past the watcher's first poll of an image job (2 s)
    if prompt == "steps":
        report_progress(job, 80)
        time.sleep(1.5)
    return {"images": ["data:image/png;base64,aW1hZ2U="], "seed": 1}
