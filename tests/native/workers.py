"""Contract-following fake workers for the native tasks (handlers/README.md, design.md §6).

They run inside the project's RunPod emulator like real handlers: they fetch every media URL
they are given (so staged uploads are proven reachable), check the fields the contract names,
and answer in their surface's dialect at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx

from handlers.common.progress import report_progress
from tests.gateway.workers import png

IMAGE_TASKS = {"txt2img", "img2img", "img-rmbg", "img-upscale"}


def _fetch(url: str) -> bytes:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return response.content


def _error(param: str, message: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "code": "bad_input", "message": message, "param": param}}


def images(job: dict[str, Any]) -> dict[str, Any]:
    """The images dialect with ``task``: every task answers ``images[]``."""
    data = job["input"]
    task = data.get("task", "txt2img")
    if task not in IMAGE_TASKS:
        return _error("task", "unknown task")
    sources = [data["image"]] if "image" in data else list(data.get("images") or [])
    fetched = [_fetch(url) for url in sources]
    if task != "txt2img" and not fetched:
        return _error("image", "an input image is required")
    if data.get("prompt") == "fail":
        return _error("prompt", "cannot draw that")
    report_progress(job, 50.0, "data:image/png;base64," + base64.b64encode(png(1, 1, 9)).decode())
    seed = int(data.get("seed", 0)) % 256
    side = {"img-upscale": 4, "img-rmbg": 2}.get(task, 1)
    image = png(side, side, (seed + sum(len(f) for f in fetched)) % 256)
    return {"images": ["data:image/png;base64," + base64.b64encode(image).decode()], "seed": seed}


def media(job: dict[str, Any]) -> dict[str, Any]:
    """The media dialect (speech, music, video): ``files[]`` with inline data."""
    data = job["input"]
    fetched = {k: _fetch(v) for k, v in data.items() if isinstance(v, str) and v.startswith("http")}
    task = data.get("task")
    report_progress(job, 45.5)
    digest = hashlib.sha256(repr(sorted((k, len(v)) for k, v in fetched.items())).encode()).hexdigest()[:8]
    if task == "txt2audio":
        payload, content_type, seconds = f"RIFFaudio:{data['text']}".encode(), "audio/wav", len(data["text"]) / 15
    elif task == "txt2music":
        payload, content_type, seconds = f"music:{data['caption']}:{digest}".encode(), "audio/flac", data["duration"]
    else:
        frames, fps = int(data.get("frames", 24)), int(data.get("fps", 24))
        payload, content_type, seconds = f"mp4:{task}:{digest}".encode(), "video/mp4", frames / fps
    return {"files": [{"content_type": content_type, "data": base64.b64encode(payload).decode()}],
            "duration_s": seconds, "echo": sorted(data)}


def transcribe(job: dict[str, Any]) -> dict[str, Any]:
    """worker-faster_whisper's dialect plus ``source_url`` (the worker downloads platform links)."""
    data = job["input"]
    if "source_url" in data:
        source = "link:" + data["source_url"].split("/")[2]
    elif "audio_base64" in data:  # small /v1 uploads travel inline
        source = f"bytes{len(base64.b64decode(data['audio_base64']))}"
    else:
        source = f"bytes{len(_fetch(data['audio']))}"
    segments = [
        {"id": 0, "start": 0.0, "end": 1.5, "text": f" {source}"},
        {"id": 1, "start": 1.5, "end": 62.25, "text": " second line"},
    ]
    return {"segments": segments, "transcription": f"{source} second line", "duration": 62.25}


def ocr(job: dict[str, Any]) -> dict[str, Any]:
    """worker-vllm's dialect with an image part: the text 'read' is the image's size."""
    body = job["input"]["openai_input"]
    parts = body["messages"][-1]["content"]
    image = next(p for p in parts if p["type"] == "image_url")["image_url"]["url"]
    text = f"page of {len(_fetch(image))} bytes"
    return {"id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}}


def booster(job: dict[str, Any]) -> dict[str, Any]:
    """A chat model asked for JSON: it 'improves' the user's text, or answers in plain text
    when the text asks it to (to show a plain answer still counts)."""
    body = job["input"]["openai_input"]
    assert body.get("response_format") == {"type": "json_object"}
    user = body["messages"][-1]["content"]
    text = user if isinstance(user, str) else user[0]["text"]
    answer = f"plain {text}" if text.startswith("plain") else \
        json.dumps({"prompt": f"enhanced {text.splitlines()[0]}", "negative_prompt": "blurry"})
    return {"id": "c2", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}}
