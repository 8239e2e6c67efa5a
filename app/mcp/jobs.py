"""Running a task tool: submit through the native route's own code, then wait for the job.

The wait reads what the gateway already keeps (the job's stored result, the watcher's last
look), never RunPod directly, and reports progress to the client as MCP progress
notifications; past ``DRYAPI_MCP_WAIT_S`` the tool answers with the job id to poll.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import mcp_types as types
from litestar import Request
from mcp.server.context import ServerRequestContext

from app.auth import Principal
from app.jobs.access import current_status, watch_status
from app.jobs.records import JobRecord
from app.mcp.arguments import task_body
from app.mcp.results import job_result, pending_result
from app.native.status import native_status
from app.native.submit import submit_body
from app.services import Services
from app.tasks.spec import TaskSpec

_POLL_START_S = 0.1
_POLL_MAX_S = 1.0


async def job_status(request: Request[Any, Any, Any], record: JobRecord, *, fresh: bool) -> dict[str, Any]:
    """The job's native status; ``fresh`` asks RunPod when nothing newer is kept."""
    state = request.app.state
    services: Services = state.services
    if fresh:
        body = await current_status(services, state.tracker, state.watcher, record)
    else:
        body = await watch_status(services, state.tracker, state.watcher, record)
    return native_status(body)


async def _wait(
    request: Request[Any, Any, Any], ctx: ServerRequestContext[Any, Any], record: JobRecord, wait_s: float
) -> dict[str, Any] | None:
    """The job's final status, or None once ``wait_s`` has passed."""
    deadline = time.monotonic() + wait_s
    delay, reported = _POLL_START_S, -1.0
    while True:
        data = await job_status(request, record, fresh=False)
        if data["status"] in ("done", "error"):
            return data
        if data["progress"] != reported:
            reported = data["progress"]
            await ctx.session.report_progress(reported, 100.0, data["status"])
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 1.5, _POLL_MAX_S)


async def run_task(
    request: Request[Any, Any, Any],
    ctx: ServerRequestContext[Any, Any],
    principal: Principal,
    spec: TaskSpec,
    arguments: dict[str, Any],
) -> types.CallToolResult:
    services: Services = request.app.state.services
    settings = services.settings
    body = await task_body(spec, arguments, settings.media_allowlist)
    record = await submit_body(request, spec, principal, body)
    data = await _wait(request, ctx, record, settings.mcp_wait_s)
    if data is None:
        return pending_result(record.id, await job_status(request, record, fresh=False), settings.mcp_wait_s)
    return await job_result(services, record.id, data)
