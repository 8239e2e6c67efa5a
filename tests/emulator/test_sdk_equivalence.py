"""The emulator reports a job exactly as the runpod SDK's own ``rp_job.handle_job`` does.

Each handler runs twice: once through ``handle_job`` itself, which posts its stream chunks
and final result over real HTTP to a recording server standing in for RunPod's job API, and
once through the emulator's ``execute``. Stream chunks, output and error must be identical.

Pinned differences (by design, see ``app/emulator/execute.py``):
- a FAILED returned dict: the SDK posts the rest of the dict as ``output`` next to
  ``error``; RunPod reports the error, so the emulator keeps no output;
- a sync handler runs on a private loop in a thread, not inline on the serving loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import msgspec
import pytest
from litestar import Request, post
from runpod.serverless.modules import rp_http, rp_job

from app.emulator.execute import execute
from handlers.common.progress import EMULATOR_PROGRESS_KEY, report_progress
from tests.support.servers import serve, stub_app

Api = tuple[str, list[tuple[str, Any]]]  # the recording server's URL and what it received
ERROR = {"type": "invalid_request_error", "code": "x", "message": "bad", "param": "prompt"}


def returns_output(job: dict[str, Any]) -> Any:
    return {"echo": job["input"], "refresh_worker": True}


def returns_error_dict(job: dict[str, Any]) -> Any:
    return {"error": ERROR, "partial": 1}


def returns_error_string(job: dict[str, Any]) -> Any:
    return {"error": json.dumps(ERROR)}


def returns_empty(job: dict[str, Any]) -> Any:
    return {}


def raises(job: dict[str, Any]) -> Any:
    raise ValueError("kaboom")


async def async_returns_list(job: dict[str, Any]) -> Any:
    await asyncio.sleep(0)
    return [1, "two", {"three": 3}]


def sync_generator(job: dict[str, Any]) -> Iterator[Any]:
    yield "text"
    yield {"n": 1}
    yield [1, 2]


async def yields_error_dict(job: dict[str, Any]) -> AsyncIterator[Any]:
    yield "first"
    yield {"error": ERROR}
    yield "never"


async def yields_error_string(job: dict[str, Any]) -> AsyncIterator[Any]:
    yield {"error": json.dumps(ERROR)}


async def generator_raises(job: dict[str, Any]) -> AsyncIterator[Any]:
    yield "first"
    raise RuntimeError("midway")


async def yields_falsy_error(job: dict[str, Any]) -> AsyncIterator[Any]:
    yield {"error": "", "data": 1}


HANDLERS = [
    returns_output,
    returns_error_dict,
    returns_error_string,
    returns_empty,
    raises,
    async_returns_list,
    sync_generator,
    yields_error_dict,
    yields_error_string,
    generator_raises,
    yields_falsy_error,
]


@pytest.fixture(scope="module")
def runpod_api() -> Iterator[Api]:
    """A stand-in for RunPod's job API: records what the SDK posts (stream chunks, results)."""
    posts: list[tuple[str, Any]] = []

    @post("/{kind:str}", status_code=200)
    async def receive(kind: str, request: Request[Any, Any, Any]) -> str:
        posts.append((kind, json.loads(await request.body())))
        return "ok"

    with serve(stub_app(receive)) as server:
        yield server.url, posts


def through_sdk(
    handler: Callable[..., Any], api: Api, aggregate: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Any], dict[str, Any]]:
    url, posts = api
    posts.clear()
    monkeypatch.setattr(rp_http, "JOB_DONE_URL", f"{url}/done?id=$ID")
    monkeypatch.setattr(rp_http, "JOB_STREAM_URL", f"{url}/stream?id=$ID")

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            config = {"handler": handler, "return_aggregate_stream": aggregate}
            await rp_job.handle_job(session, config, {"id": "job-1", "input": {"x": 1}})

    asyncio.run(run())
    chunks = [body["output"] for kind, body in posts if kind == "stream"]
    (done,) = [body for kind, body in posts if kind == "done" and body.get("status") != "IN_PROGRESS"]
    return chunks, done


def through_emulator(handler: Callable[..., Any], aggregate: bool) -> tuple[list[Any], dict[str, Any]]:
    chunks: list[Any] = []

    def on_chunk(piece: Any) -> None:
        chunks.append(piece if isinstance(piece, str) else msgspec.json.decode(piece))

    async def run() -> Any:
        job = {"id": "job-1", "input": {"x": 1}}
        return await execute(handler, job, on_chunk, threading.Event(), "w", aggregate_stream=aggregate)

    outcome = asyncio.run(run())
    done: dict[str, Any] = {}
    if outcome.output is not None:
        done["output"] = msgspec.json.decode(outcome.output)
    if outcome.error is not None:
        done["error"] = msgspec.json.decode(outcome.error)
    return chunks, done


@pytest.mark.parametrize("aggregate", [True, False])
@pytest.mark.parametrize("handler", HANDLERS, ids=lambda h: h.__name__)
def test_same_chunks_output_and_error(
    handler: Callable[..., Any],
    aggregate: bool,
    runpod_api: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sdk_chunks, sdk_done = through_sdk(handler, runpod_api, aggregate, monkeypatch)
    emulated_chunks, emulated_done = through_emulator(handler, aggregate)
    assert emulated_chunks == sdk_chunks
    sdk_done.pop("stopPod", None)  # refresh_worker: the emulator has no pod to restart
    if "error" in sdk_done:
        sdk_done.pop("output", None)  # pinned: RunPod reports a FAILED job's error, not its output
    assert emulated_done == sdk_done


def test_a_yielded_error_dict_becomes_its_repr() -> None:
    """Why our workers send errors as JSON strings: the SDK's handle_job uses str()."""
    _, done = through_emulator(yields_error_dict, True)
    assert done == {"error": str(ERROR)}
    _, done = through_emulator(yields_error_string, True)
    assert json.loads(done["error"]) == ERROR


def reports_progress(job: dict[str, Any]) -> Any:
    report_progress(job, 50)
    return {"ok": True}


def test_progress_reaches_runpod_and_the_emulator_alike(
    runpod_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNPOD_WEBHOOK_GET_JOB", "http://unused/job-take/$ID?x=1")  # "on RunPod"
    through_sdk(reports_progress, runpod_api, True, monkeypatch)
    posts = runpod_api[1]
    deadline = time.monotonic() + 5  # progress_update posts from its own thread
    while not any(body.get("status") == "IN_PROGRESS" for _, body in posts) and time.monotonic() < deadline:
        time.sleep(0.01)
    (sdk_progress,) = [body["output"] for kind, body in posts if body.get("status") == "IN_PROGRESS"]

    seen: list[Any] = []
    job = {"id": "job-1", "input": {}, EMULATOR_PROGRESS_KEY: seen.append}
    asyncio.run(execute(reports_progress, job, lambda _: None, threading.Event(), "w"))
    assert seen == [sdk_progress] == [{"progress": 50.0}]
