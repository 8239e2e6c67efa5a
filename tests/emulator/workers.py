"""Small handler functions of every kind the runpod SDK accepts, for the emulator's tests.

Slow ones block on a named *gate* (a ``threading.Event``) that the test opens, so tests never
sleep longer than needed. The emulator runs in-process (a server thread), so gates, the
``SEEN`` log and ``CANCELLED`` set are shared with the test.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

from handlers.common.progress import report_progress

GATES: defaultdict[str, threading.Event] = defaultdict(threading.Event)
SEEN: dict[str, dict[str, Any]] = {}  # job id -> what the handler observed
CANCELLED: set[str] = set()  # job ids whose async handler saw CancelledError
GATE_TIMEOUT_S = 10.0


def gate(name: str) -> threading.Event:
    return GATES[name]


def _gate_name(job: dict[str, Any]) -> str | None:
    data = job["input"]
    name = data.get("gate") or (data.get("openai_input") or {}).get("gate")
    return str(name) if name else None


def _wait_gate(job: dict[str, Any]) -> None:
    name = _gate_name(job)
    if name and not GATES[name].wait(GATE_TIMEOUT_S):
        raise TimeoutError(f"gate {name} was never opened")


async def _await_gate(job: dict[str, Any]) -> None:
    name = _gate_name(job)
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while name and not GATES[name].is_set():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {name} was never opened")
        await asyncio.sleep(0.005)


def echo(job: dict[str, Any]) -> Any:
    """Sync: optional progress, optional gate, then the input back (or ``return`` verbatim)."""
    SEEN[job["id"]] = {"thread": threading.current_thread().name, "keys": sorted(job)}
    if "progress" in job["input"]:
        report_progress(job, job["input"]["progress"])
    _wait_gate(job)
    if "return" in job["input"]:
        return job["input"]["return"]
    job["input"]["mutated"] = True  # must not leak into the stored input
    return {"echo": {k: v for k, v in job["input"].items() if k != "mutated"}}


async def async_echo(job: dict[str, Any]) -> Any:
    SEEN[job["id"]] = {"thread": threading.current_thread().name}
    try:
        await _await_gate(job)
    except asyncio.CancelledError:
        CANCELLED.add(job["id"])
        raise
    return {"echo": job["input"]}


def sync_gen(job: dict[str, Any]) -> Iterator[Any]:
    SEEN[job["id"]] = {"thread": threading.current_thread().name}
    for item in job["input"]["items"]:
        yield item
        if item == "wait":
            _wait_gate(job)


async def async_gen(job: dict[str, Any]) -> AsyncIterator[Any]:
    for item in job["input"]["items"]:
        yield item
        if item == "wait":
            await _await_gate(job)


def boom(job: dict[str, Any]) -> Any:
    raise ValueError(f"kaboom {job['input'].get('n', 0)}")


def error_dict(job: dict[str, Any]) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "message": "bad prompt", "param": "prompt"}, "partial": 1}


def sleepy(job: dict[str, Any]) -> dict[str, Any]:
    time.sleep(job["input"].get("s", 0.0))
    return {"slept": job["input"].get("s", 0.0)}


def flaky(job: dict[str, Any]) -> dict[str, Any]:
    """Fails on the first attempt of a job id, succeeds after /retry."""
    if job["id"] not in SEEN:
        SEEN[job["id"]] = {}
        raise RuntimeError("first attempt fails")
    return {"ok": True}


def _sse_pieces(body: dict[str, Any]) -> list[str]:
    events = [
        {"object": "chat.completion.chunk", "model": body.get("model"), "choices": [{"delta": {"content": w}}]}
        for w in ("Hello", " there")
    ]
    text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return [text[i : i + 9] for i in range(0, len(text), 9)]  # odd pieces split events mid-way


async def openai(job: dict[str, Any]) -> AsyncIterator[Any]:
    """worker-vllm style: raw SSE text when streaming, else one completion (aggregated to [x])."""
    route = job["input"]["openai_route"]
    body = job["input"]["openai_input"]
    SEEN[job["id"]] = {"route": route, "body": body}
    text = (body.get("messages") or [{}])[-1].get("content", "")
    if text == "fail":
        # A JSON string, as our workers send errors: the SDK would turn a yielded dict into its repr.
        error = {"type": "invalid_request_error", "message": "cannot do that", "param": "messages", "code": "x"}
        yield {"error": json.dumps(error)}
        return
    if text == "crash":
        raise RuntimeError("worker exploded")
    if route == "/v1/models":
        yield {"object": "list", "data": [{"id": "m1", "object": "model"}]}
        return
    if not body.get("stream"):
        try:
            await _await_gate(job)
        except asyncio.CancelledError:
            CANCELLED.add(job["id"])
            raise
        yield {"object": "chat.completion", "model": body.get("model"), "choices": [{"message": {"content": text}}]}
        return
    pieces = _sse_pieces(body)
    yield pieces[0]
    try:
        await _await_gate(job)  # the test opens it only after it has read the first piece
    except asyncio.CancelledError:
        CANCELLED.add(job["id"])
        raise
    if text == "break":
        yield {"error": json.dumps({"message": "GPU fell off", "type": "server_error"})}
        return
    for piece in pieces[1:]:
        yield piece


def embeddings(job: dict[str, Any]) -> list[dict[str, Any]]:
    """worker-infinity style: a one-element list on the openai route."""
    body = job["input"]["openai_input"]
    return [
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
            "model": body["model"],
        }
    ]


def dict_chunks(job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Streams dicts (worker-vllm v2.23 with RAW_OPENAI_OUTPUT=0)."""
    yield {"n": 1}
    yield {"n": 2}


# --- one client error in every form a worker can send it (tests/emulator/test_error_forms.py) ---

CLIENT_ERROR = {"type": "invalid_request_error", "code": "bad_msg", "message": "cannot do that", "param": "messages"}


def _error_form(job: dict[str, Any]) -> str:
    messages = job["input"]["openai_input"]["messages"]
    return str(messages[-1]["content"])


async def yields_error(job: dict[str, Any]) -> AsyncIterator[Any]:
    """A generator worker: the runpod SDK reports a yielded error as ``str(error)``."""
    form = _error_form(job)
    yield {"error": CLIENT_ERROR if form == "dict" else json.dumps(CLIENT_ERROR)}


def returns_error(job: dict[str, Any]) -> dict[str, Any]:
    """A plain worker: the runpod SDK passes a returned error through unchanged."""
    form = _error_form(job)
    return {"error": CLIENT_ERROR if form == "dict" else json.dumps(CLIENT_ERROR)}
