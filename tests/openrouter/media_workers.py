"""A contract-following media worker for the OpenRouter media tests (tests/contracts/*.json).

Speech answers real audio in the asked format (raw 16-bit PCM, or WAV); video answers the
contract's real MP4 clip. Each job's input is kept by its prompt or text, so a test can see
what the gateway asked the worker for (the emulator runs handlers in the test's process).
"""

from __future__ import annotations

import base64
import io
import json
import math
import struct
import wave
from pathlib import Path
from typing import Any

from tests.native.workers import media as native_media

SEEN: dict[str, dict[str, Any]] = {}
SAMPLE_RATE = 24_000
_CONTRACT = Path(__file__).resolve().parents[1] / "contracts" / "video.json"
CLIP = base64.b64decode(json.loads(_CONTRACT.read_text())["cases"][0]["output"]["files"][0]["data"])


def samples_for(text: str) -> int:
    """How long the fake voice speaks ``text``: 10 ms a character."""
    return len(text) * SAMPLE_RATE // 100


def _pcm(count: int) -> bytes:
    return b"".join(struct.pack("<h", int(8000 * math.sin(i / 8))) for i in range(count))


def media(job: dict[str, Any]) -> dict[str, Any]:
    data = job["input"]
    task = data.get("task")
    SEEN[str(data.get("prompt") or data.get("text"))] = dict(data)
    if task == "txt2audio":
        pcm = _pcm(samples_for(data["text"]))
        if data.get("format") == "pcm":
            payload, content_type = pcm, "audio/pcm"
        else:
            buffer = io.BytesIO()
            with wave.open(buffer, "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(SAMPLE_RATE)
                out.writeframes(pcm)
            payload, content_type = buffer.getvalue(), "audio/wav"
        return {"files": [{"content_type": content_type, "data": base64.b64encode(payload).decode()}],
                "duration_s": len(pcm) / 2 / SAMPLE_RATE}
    if task in ("txt2video", "img2video"):
        if str(data.get("prompt", "")).startswith("fail"):
            return {"error": {"type": "invalid_request_error", "code": "bad_input", "message": "cannot film that",
                              "param": "prompt"}}
        native_media(job)  # fetches the staged frames, as a real worker does
        frames, fps = int(data.get("frames", 121)), int(data.get("fps", 24))
        return {"files": [{"content_type": "video/mp4", "data": base64.b64encode(CLIP).decode()}],
                "duration_s": frames / fps}
    return native_media(job)
