"""A finished job's raw handler output, in the OpenAI shape of its surface.

Async jobs keep what the client would have received synchronously: a ``chat.completion``
(assembled from SSE chunks for streamed jobs, ``app/jobs/chat_assembly.py``), an embeddings
list, an images response with signed URLs, or a transcript in the requested ``response_format``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from app.errors import UpstreamError
from app.jobs.chat_assembly import assemble_chat
from app.jobs.outcome import unwrap
from app.jobs.records import JobRecord
from app.openai import complete
from app.openai import images as images_surface
from app.openai.embeddings import encode_base64
from app.openai.transcript_formats import render
from app.services import Services


def _is_stream(output: Any) -> bool:
    if not isinstance(output, list) or not output:
        return False
    return not isinstance(output[0], dict) or output[0].get("object") == "chat.completion.chunk"


async def _chat(output: Any, record: JobRecord, max_bytes: int) -> Any:
    if _is_stream(output):
        # Off the event loop: a stream of many megabytes takes a while to fold even in linear time.
        body = await asyncio.to_thread(assemble_chat, output, record.model, max_bytes=max_bytes)
    else:
        body = unwrap(output)
    if isinstance(body, dict):
        _stable(body, record)
        body = complete.chat_completion(body, complete.Served(record.model, record.endpoint_id), None)
    return body


def _stable(body: dict[str, Any], record: JobRecord) -> None:
    """An output read twice reads the same: what the worker left out is the job's own."""
    if not isinstance(body.get("id"), str) or not body["id"]:
        body["id"] = record.id
    if not isinstance(body.get("created"), int):
        body["created"] = record.created


def _embeddings(output: Any, record: JobRecord) -> Any:
    body = unwrap(output)
    if not isinstance(body, dict):
        raise UpstreamError("The worker's embeddings output is not an object", code="upstream_bad_response")
    if record.options.get("encoding_format") == "base64":
        for item in body.get("data") or []:
            if isinstance(item.get("embedding"), list):
                item["embedding"] = encode_base64(item["embedding"])
    _stable(body, record)
    return complete.embeddings(body, complete.Served(record.model, record.endpoint_id), None)


async def public_output(services: Services, record: JobRecord, output: Any) -> Any:
    """The client-facing output of a COMPLETED job."""
    if record.surface == "chat":
        return await _chat(output, record, services.settings.stream_max_bytes)
    if record.surface == "embeddings":
        return _embeddings(output, record)
    if record.surface == "images":
        return await images_surface.to_openai(services, output, str(record.options.get("response_format", "url")))
    content, _ = render(
        output, str(record.options.get("response_format", "json")), words=bool(record.options.get("words"))
    )
    return content


def text_of(surface: str, output: Any) -> str:
    """The plain text of an output, for ``download?format=txt``."""
    if surface == "chat" and isinstance(output, dict):
        return "\n".join(str((c.get("message") or {}).get("content") or "") for c in output.get("choices") or [])
    if isinstance(output, str):
        return output
    if isinstance(output, dict) and isinstance(output.get("text"), str):
        return str(output["text"])
    return msgspec.json.encode(output).decode()


def media_links(surface: str, output: Any) -> list[str]:
    if surface != "images" or not isinstance(output, dict):
        return []
    return [str(item["url"]) for item in output.get("data") or [] if isinstance(item, dict) and item.get("url")]
