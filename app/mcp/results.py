"""What a tool answers: JSON text for the agent, plus the file itself where it is small.

Generated files are links (``result_url``); an image or audio file this gateway holds and that
is small enough also rides along as an MCP image/audio block, so a client can show it at once.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

import mcp_types as types
import msgspec

from app.services import Services

INLINE_MAX_BYTES = 1024 * 1024
_FILES_PATH = "/v1/files/"

Content = types.TextContent | types.ImageContent | types.AudioContent


def text_result(payload: dict[str, Any], *, error: bool = False) -> types.CallToolResult:
    text = msgspec.json.encode(payload).decode()
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=error)


def error_result(message: str) -> types.CallToolResult:
    return text_result({"success": False, "error": message}, error=True)


async def _inline_file(services: Services, url: str) -> Content | None:
    """The file behind one of our own signed links, as a content block, if small."""
    parts = urlsplit(url)
    public = urlsplit(services.settings.public_url)
    if parts.netloc != public.netloc or not parts.path.startswith(_FILES_PATH):
        return None
    stored = await services.files.get(parts.path.removeprefix(_FILES_PATH))
    if stored is None or len(stored[1]) > INLINE_MAX_BYTES:
        return None
    content_type, data = stored
    encoded = base64.b64encode(data).decode()
    if content_type.startswith("image/"):
        return types.ImageContent(data=encoded, mime_type=content_type)
    if content_type.startswith("audio/"):
        return types.AudioContent(data=encoded, mime_type=content_type)
    return None


async def job_result(services: Services, job_id: str, data: dict[str, Any]) -> types.CallToolResult:
    """A finished (or failed) job's answer, from its native status ``data``."""
    if data["status"] == "error":
        return text_result({"success": False, "job_id": job_id, "status": "error",
                            "error": data.get("error", "The job failed")}, error=True)
    payload: dict[str, Any] = {"success": True, "job_id": job_id, "status": "done"}
    if data.get("result_url"):
        payload["result_url"] = data["result_url"]
    if data.get("result") is not None:
        payload["result"] = data["result"]
    result = text_result(payload)
    if data.get("result_url"):
        block = await _inline_file(services, str(data["result_url"]))
        if block is not None:
            result.content.append(block)
    return result


def pending_result(job_id: str, data: dict[str, Any], waited_s: float) -> types.CallToolResult:
    return text_result({
        "success": True, "job_id": job_id, "status": data["status"], "progress": data.get("progress", 0.0),
        "message": f"The job is still running after {waited_s:g} s. Call check_job_status with job_id "
                   f"{job_id!r} to get its result.",
    })
