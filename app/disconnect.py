"""Stop paying for work nobody waits for: watch for the client hanging up mid-request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from litestar import Request

from app.errors import GatewayError

T = TypeVar("T")

_background: set[asyncio.Task[Any]] = set()


class ClientDisconnected(GatewayError):
    status_code = 499
    error_type = "invalid_request_error"
    default_code = "client_disconnected"


def spawn(coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` detached, keeping a reference so it is not garbage-collected mid-flight."""
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _wait_for_disconnect(request: Request[Any, Any, Any]) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(
    request: Request[Any, Any, Any],
    work: Awaitable[T],
    on_disconnect: Callable[[], Coroutine[Any, Any, Any]] | None = None,
) -> T:
    """Await ``work``; if the client disconnects first, cancel it and run ``on_disconnect``."""
    work_task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        await asyncio.wait((work_task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if work_task.done():
        return work_task.result()
    work_task.cancel()
    if on_disconnect is not None:
        spawn(on_disconnect())
    raise ClientDisconnected("The client closed the connection")
