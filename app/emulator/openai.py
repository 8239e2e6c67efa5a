"""RunPod's OpenAI-compatible passthrough: ``/v2/{endpoint_id}/openai/v1/...``.

The request becomes a job ``{"openai_route": "/v1/...", "openai_input": <body>}`` on the
endpoint (the worker-vllm / worker-infinity dialect). With ``"stream": true`` every yielded
chunk is relayed the moment it is yielded: text verbatim (workers yield raw SSE pieces that
may split events anywhere), other values as ``data: <json>`` events. Otherwise the answer is
the job's output, a one-element list (an aggregated generator) unwrapped. A client that
hangs up cancels the job. The job record is dropped once answered: no one knows its id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Stream

from app.emulator.outcome import Chunk
from app.emulator.routes import RUNSYNC_MAX_BYTES
from app.emulator.service import Emulator
from app.emulator.store import Job, JobStatus
from app.emulator.web import emulator_for, json_response

Req = Request[Any, Any, Any]


class _Peek(msgspec.Struct):
    stream: Any = None


def _openai_error(message: str, error_type: str = "server_error") -> dict[str, Any]:
    return {"message": message, "type": error_type, "code": None, "param": None}


def error_object(error: Any) -> tuple[int, dict[str, Any]]:
    """A FAILED job's ``error`` as an OpenAI error object, with its HTTP status.

    A JSON-encoded object (how our workers send errors through the runpod SDK) counts as
    the object it encodes. How RunPod's own OpenAI route renders a failed job is not
    documented; this is the emulator's assumption.
    """
    if isinstance(error, str) and error.startswith("{"):
        with contextlib.suppress(msgspec.DecodeError):
            error = msgspec.json.decode(error)
    if isinstance(error, dict):
        return (400 if error.get("type") == "invalid_request_error" else 500), error
    message = error if isinstance(error, str) else msgspec.json.encode(error).decode()
    return 500, _openai_error(message)


def _failure(job: Job) -> tuple[int, dict[str, Any]]:
    """Why a job that ended without output ended so."""
    if job.removed and not job.terminal:
        return 500, _openai_error("the job expired before it finished")
    if job.status is JobStatus.FAILED and job.error is not None:
        return error_object(msgspec.json.decode(job.error))
    if job.status is JobStatus.COMPLETED:
        return 500, _openai_error("the worker returned no output")
    return 500, _openai_error(f"the job ended {job.status.value}")


def _unwrapped(output: msgspec.Raw) -> bytes:
    raw = bytes(output)
    if raw.lstrip()[:1] == b"[":
        value = msgspec.json.decode(raw)
        if isinstance(value, list) and len(value) == 1:
            return msgspec.json.encode(value[0])
    return raw


def _whole(output: msgspec.Raw) -> bytes:
    value = _unwrapped(output)
    text = msgspec.json.decode(value) if value[:1] == b'"' else None
    return text.encode() if isinstance(text, str) else b"data: " + value + b"\n\n"


def _sse(piece: Chunk) -> bytes:
    if isinstance(piece, str):
        return piece.encode()
    return b"data: " + bytes(piece) + b"\n\n"


async def _relay(emulator: Emulator, job: Job) -> AsyncIterator[bytes]:
    sent = 0
    try:
        while True:
            while sent < len(job.chunks):
                yield _sse(job.chunks[sent])
                sent += 1
            if job.status is JobStatus.COMPLETED:
                if sent == 0 and job.output is not None and bytes(job.output) != b"[]":
                    yield _whole(job.output)  # a handler that does not stream answered at once
                return
            if job.terminal or job.removed:
                yield b"data: " + msgspec.json.encode({"error": _failure(job)[1]}) + b"\n\n"
                return
            await job.changed().wait()
    finally:  # also when the client hangs up (Litestar cancels the stream)
        emulator.cancel(job)
        emulator.delete(job)


async def _disconnected(request: Req) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(request: Req, work: Awaitable[None]) -> bool:
    """Await ``work``; False (and ``work`` cancelled) if the client hangs up first."""
    done_task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((done_task, watcher), return_when=asyncio.FIRST_COMPLETED)
        return done_task.done()
    finally:
        watcher.cancel()
        done_task.cancel()


async def _passthrough(request: Req, endpoint_id: str, route: str, body: bytes | None) -> Response[Any]:
    emulator = emulator_for(request, endpoint_id)
    streaming = False
    if body is not None:
        try:
            streaming = msgspec.json.decode(body, type=_Peek).stream is True
        except (msgspec.ValidationError, msgspec.DecodeError):
            error = _openai_error("the request body must be a JSON object", "invalid_request_error")
            return json_response({"error": error}, 400)
    openai_input = body if body is not None else b"{}"
    job_input = b'{"openai_route":' + msgspec.json.encode(route) + b',"openai_input":' + openai_input + b"}"
    job = emulator.submit(endpoint_id, msgspec.Raw(job_input), sync=True)
    if streaming:
        return Stream(
            _relay(emulator, job),
            status_code=200,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    try:
        if not await _unless_disconnected(request, emulator.wait(job, None)):
            emulator.cancel(job)
            return json_response({"error": _openai_error("the client disconnected")}, 499)
        if job.status is JobStatus.COMPLETED and job.output is not None:
            return Response(content=_unwrapped(job.output), status_code=200, media_type="application/json")
        status_code, error = _failure(job)
        return json_response({"error": error}, status_code)
    finally:
        emulator.delete(job)


class OpenAIRoutes(Controller):
    path = "/v2/{endpoint_id:str}/openai"

    @post("/{route:path}", status_code=200, request_max_body_size=RUNSYNC_MAX_BYTES)
    async def post_route(self, request: Req, endpoint_id: FromPath[str], route: FromPath[str]) -> Response[Any]:
        return await _passthrough(request, endpoint_id, route, await request.body())

    @get("/{route:path}")
    async def get_route(self, request: Req, endpoint_id: FromPath[str], route: FromPath[str]) -> Response[Any]:
        return await _passthrough(request, endpoint_id, route, None)
