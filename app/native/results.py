"""What a finished native job leaves for ``request-status``: a link to the file, or text.

The engine calls ``native_output`` (registered as the ``native`` dialect's renderer) once,
when the job finishes; its answer is kept with the job for ``DRYAPI_RESULT_TTL_S``:
``result_url`` is a signed ``/v1/files`` link to the file itself (or the worker's own S3 URL),
``result`` is text, always a string, because the seeds' clients type it as one (reference §13).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from app.errors import UpstreamError
from app.files import decode_data_uri
from app.jobs.outcome import unwrap
from app.jobs.records import JobRecord
from app.services import Services


def _bad(what: str) -> UpstreamError:
    return UpstreamError(f"The worker's output has no {what}", code="upstream_bad_response")


async def _link(services: Services, item: Any, default_type: str) -> str:
    """A URL for one produced file: the worker's own URL, or its bytes staged as a signed link."""
    if isinstance(item, dict):
        if isinstance(item.get("url"), str) and item["url"]:
            return str(item["url"])
        data, content_type = item.get("data"), str(item.get("content_type") or default_type)
    else:
        data, content_type = item, default_type
    if not isinstance(data, str) or not data:
        raise _bad("file")
    if data.startswith(("https://", "http://")):
        return data
    decoded = decode_data_uri(data)
    if decoded is not None:
        content_type, raw = decoded
    else:
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise _bad("decodable file") from None
    return await services.files.put(raw, content_type)


def _clock(seconds: Any) -> str:
    millis = max(0, round(float(seconds or 0) * 1000))
    minutes, millis = divmod(millis, 60_000)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{millis / 1000:06.3f}"


def transcript(output: Any, *, timestamps: bool) -> str:
    """A faster-whisper style output as text, one ``[start --> end] text`` line per segment when
    timestamps are asked for."""
    if not isinstance(output, dict):
        raise _bad("transcript")
    segments = [s for s in output.get("segments") or [] if isinstance(s, dict)]
    if timestamps and segments:
        return "\n".join(f"[{_clock(s.get('start'))} --> {_clock(s.get('end'))}] {str(s.get('text', '')).strip()}"
                         for s in segments)
    text = output.get("transcription") or output.get("text")
    if isinstance(text, str):
        return text.strip()
    return "".join(str(s.get("text", "")) for s in segments).strip()


def _chat_text(output: Any) -> str:
    if isinstance(output, list) and output and isinstance(output[0], str):
        return "".join(output)  # a worker's raw text stream
    choices = output.get("choices") if isinstance(output, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _bad("text")
    message = choices[0].get("message") or {}
    return str(message.get("content") or "")


async def native_output(services: Services, record: JobRecord, output: Any) -> dict[str, Any]:
    """The neutral result of a COMPLETED native job: ``result_url``, ``result``, ``files``."""
    body = unwrap(output)  # a worker's own error output was turned into the job's error already
    task = str(record.options.get("task", ""))
    result: dict[str, Any] = {"result_url": None, "results_alt_formats": None, "result": None}
    if record.surface == "images":
        images = body.get("images") if isinstance(body, dict) else None
        if not isinstance(images, list) or not images:
            raise _bad("images")
        urls = [await _link(services, image, "image/png") for image in images]
        result |= {"result_url": urls[0], "files": urls}
    elif record.surface in ("speech", "music", "video"):
        files = body.get("files") if isinstance(body, dict) else None
        if not isinstance(files, list) or not files:
            raise _bad("files")
        urls = [await _link(services, item, "application/octet-stream") for item in files]
        result |= {"result_url": urls[0], "files": urls}
        if isinstance(body, dict) and isinstance(body.get("duration_s"), int | float):
            result["duration_s"] = float(body["duration_s"])
    elif record.surface == "transcribe":
        result["result"] = transcript(body, timestamps=bool(record.options.get("include_ts")))
        if isinstance(body, dict) and isinstance(body.get("duration"), int | float):
            result["media_seconds"] = float(body["duration"])
    elif record.surface == "embeddings":
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise _bad("embeddings")
        vectors = [item.get("embedding") for item in data if isinstance(item, dict)]
        result["result"] = msgspec.json.encode(vectors).decode()
        usage = body.get("usage") if isinstance(body, dict) else None
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
            result["tokens"] = usage["prompt_tokens"]
    else:  # chat: OCR
        text = _chat_text(body)
        result |= {"result": text, "output_chars": len(text)}
    result["task"] = task
    return result
