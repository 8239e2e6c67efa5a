"""A media worker that takes its time: ``slow:<seconds>`` in the prompt or caption makes it sleep
first, so a test can cancel the job or let it run past its execution timeout."""

from __future__ import annotations

import time
from typing import Any

from tests.native.workers import media


def slow_media(job: dict[str, Any]) -> dict[str, Any]:
    data = job["input"]
    text = str(data.get("prompt") or data.get("caption") or "")
    if text.startswith("slow:"):
        time.sleep(float(text.split(":", 1)[1]))
    return media(job)
