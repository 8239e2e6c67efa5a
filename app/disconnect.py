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
    """Await ``work``; if the client disconnects first, cancel it and run ``on_disconnect``.

    ``work`` runs in the calling task (no extra task on the hot path); a watcher task
    cancels the caller when the client goes away.
    """
    caller = asyncio.current_task()
    assert caller is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        await _wait_for_disconnect(request)
        gone = True
        caller.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise
        caller.uncancel()
        if on_disconnect is not None:
            spawn(on_disconnect())
        raise ClientDisconnected("The client closed the connection") from None
    finally:
        watcher.cancel()
