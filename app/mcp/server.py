"""``/mcp``: the MCP server, mounted in the Litestar app (same process, same lifespan).

Streamable HTTP in stateless mode: every POST carries its own call, so any worker process or
replica can answer it and nothing is pinned to one. The gateway's ``AuthMiddleware`` has
already resolved ``Authorization: Bearer <key>`` to a ``Principal`` (401 otherwise); each tool
runs as that key, through the same code the native routes use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
from litestar import Litestar, Request
from litestar.handlers import ASGIRouteHandler, asgi
from litestar.types import Receive, Scope, Send
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from app.auth import Principal
from app.billing.pricing import usd
from app.billing.quote import quote
from app.errors import FieldsInvalid, GatewayError, echo
from app.jobs.records import JobRecord
from app.limits import limit_jobs, limit_request
from app.mcp.arguments import task_body
from app.mcp.jobs import job_status, run_task
from app.mcp.results import error_result, job_result, text_result
from app.mcp.schemas import (
    PRICE_TOOLS,
    TASK_TOOLS,
    UTILITY_SCHEMAS,
    input_schema,
    price_description,
    price_schema,
    task_description,
)
from app.native.catalogue import model_item, native_models
from app.native.price import PRICE_SPECS
from app.native.submit import check_body
from app.services import Services
from app.tasks.registry import TASKS

MCP_PATH = "/mcp"
# An 80 MB upload (the native routes' largest file) as base64 is 4/3 as long, plus the JSON-RPC envelope.
_MAX_BODY_BYTES = 108 * 1024 * 1024
_MESSAGE_CHARS = 1000


def _services(ctx: ServerRequestContext[Any, Any]) -> Services:
    services: Services = _request(ctx).app.state.services
    return services


def _request(ctx: ServerRequestContext[Any, Any]) -> Request[Any, Any, Any]:
    """The gateway's view of the HTTP request that carried this MCP message."""
    if ctx.request is None:
        raise RuntimeError("an MCP call without its HTTP request")
    return Request(ctx.request.scope)


async def list_tools(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    config = _services(ctx).routing.config
    tools: list[types.Tool] = []
    for tool, task in TASK_TOOLS.items():
        spec = TASKS[task]
        models = [slug for slug, route in native_models(config) if spec.inference_type in route.inference_types]
        tools.append(types.Tool(name=tool, description=task_description(tool, spec, models),
                                input_schema=input_schema(spec)))
    for tool, task in PRICE_TOOLS.items():
        tools.append(types.Tool(name=tool, description=price_description(TASKS[task]), input_schema=price_schema(task)))
    for tool, (description, schema) in UTILITY_SCHEMAS.items():
        tools.append(types.Tool(name=tool, description=description, input_schema=schema))
    return types.ListToolsResult(tools=tools)


async def _price(request: Request[Any, Any, Any], principal: Principal, task: str,
                 arguments: dict[str, Any]) -> types.CallToolResult:
    services: Services = request.app.state.services
    await limit_jobs(request, principal)  # a read, as the price route counts it
    spec = PRICE_SPECS[task]
    checked = check_body(services, spec, await task_body(spec, arguments, services.settings.media_allowlist))
    priced = quote(spec, checked.params, checked.uploads, checked.route, services.routing.config.billing,
                   principal.tier)
    return text_result({"success": True, "price": {"price": usd(priced.micro), "currency": "USD"}})


async def _check_job(request: Request[Any, Any, Any], principal: Principal,
                     arguments: dict[str, Any]) -> types.CallToolResult:
    services: Services = request.app.state.services
    job_id = arguments.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise FieldsInvalid([("job_id", "The job_id field is required.")])
    await limit_request(request, principal, None, "request-status")
    record: JobRecord | None = await services.jobs.get(job_id)
    visible = record is not None and (principal.admin or record.owner == principal.key_id)
    if record is None or not visible or record.options.get("dialect") != "native":
        return error_result(f"No job {echo(job_id)} was found for this API key.")
    data = await job_status(request, record, fresh=True)
    if data["status"] in ("done", "error"):
        return await job_result(services, job_id, data)
    return text_result({"success": True, "job_id": job_id, "status": data["status"], "progress": data["progress"],
                        "preview_url": data.get("preview")})


async def _call(ctx: ServerRequestContext[Any, Any], name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    request = _request(ctx)
    principal = request.scope.get("user")
    if not isinstance(principal, Principal):
        return error_result("Not authenticated.")
    services: Services = request.app.state.services
    if name in TASK_TOOLS:
        spec = TASKS[TASK_TOOLS[name]]
        await limit_request(request, principal, spec.surface, spec.name)
        return await run_task(request, ctx, principal, spec, arguments)
    if name in PRICE_TOOLS:
        return await _price(request, principal, PRICE_TOOLS[name], arguments)
    if name == "get_balance":
        micro = await services.ledger.balance(principal.key_id)
        return text_result({"success": True, "balance": usd(micro), "currency": "USD"})
    if name == "get_available_models":
        models = [model_item(slug, route) for slug, route in native_models(services.routing.config)]
        return text_result({"success": True, "models": models, "count": len(models)})
    if name == "check_job_status":
        return await _check_job(request, principal, arguments)
    return error_result(f"Unknown tool {echo(name)}.")


async def call_tool(
    ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    """A tool's answer; the caller's mistakes (bad fields, limits, balance) come back as tool
    errors the model can read and correct, naming every bad field."""
    try:
        return await _call(ctx, params.name, dict(params.arguments or {}))
    except FieldsInvalid as exc:
        first: dict[str, str] = {}  # an unreadable file is not also "required"
        for field, message in exc.errors:
            first.setdefault(echo(field), echo(message, _MESSAGE_CHARS))
        problems = "; ".join(f"{field}: {message}" for field, message in first.items())
        return error_result(f"Invalid arguments: {problems}")
    except GatewayError as exc:
        field = f" ({exc.param})" if exc.param else ""
        return error_result(f"{echo(exc.message, _MESSAGE_CHARS)}{field}")


class McpServer:
    """The MCP server and its session manager; one per app."""

    def __init__(self) -> None:
        self.server: Server[Any] = Server(
            "dryapi-gateway",
            instructions="Generate images, audio and video, transcribe, and embed text on dryAPI. Task tools wait "
            "for their job; when one answers with a job_id still running, call check_job_status later.",
            on_list_tools=list_tools,
            on_call_tool=call_tool,
        )
        self.sessions = StreamableHTTPSessionManager(self.server, stateless=True,
                                                     max_request_body_size=_MAX_BODY_BYTES)

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        async with self.sessions.run():
            yield

    def route(self) -> ASGIRouteHandler:
        sessions = self.sessions

        @asgi(MCP_PATH, is_mount=True, copy_scope=True)
        async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            await sessions.handle_request(scope, receive, send)  # type: ignore[arg-type]

        return mcp_endpoint
