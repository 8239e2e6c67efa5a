"""app/disconnect.py: work for a client that hangs up is cancelled, and its cleanup still runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar import Request

from app.disconnect import ClientDisconnected, spawn, unless_disconnected


class _Client:
    """The ASGI receive side of one HTTP request: the body, then a disconnect when ``hang_up``."""

    def __init__(self) -> None:
        self._gone = asyncio.Event()
        self._sent_body = False

    def hang_up(self) -> None:
        self._gone.set()

    async def receive(self) -> dict[str, Any]:
        if not self._sent_body:
            self._sent_body = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    def request(self) -> Request[Any, Any, Any]:
        scope: Any = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
        return Request(scope, receive=self.receive)


async def test_work_that_finishes_returns_its_result() -> None:
    async def work() -> str:
        await asyncio.sleep(0.01)
        return "done"

    assert await unless_disconnected(_Client().request(), work()) == "done"


async def test_a_hang_up_cancels_the_work_and_runs_the_cleanup_detached() -> None:
    client, cancelled, cleaned = _Client(), asyncio.Event(), asyncio.Event()

    async def work() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "unreachable"

    async def cleanup() -> None:
        cleaned.set()

    asyncio.get_running_loop().call_later(0.05, client.hang_up)
    with pytest.raises(ClientDisconnected) as caught:
        await unless_disconnected(client.request(), work(), cleanup)
    assert caught.value.status_code == 499 and caught.value.code == "client_disconnected"
    assert cancelled.is_set()
    await asyncio.wait_for(cleaned.wait(), 1)
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]  # the caller is not left cancelled


async def test_a_cancellation_from_elsewhere_is_not_a_disconnect() -> None:
    async def caller() -> str:
        return await unless_disconnected(_Client().request(), asyncio.sleep(10, "late"))

    task = asyncio.create_task(caller())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_spawned_work_runs_to_the_end() -> None:
    finished = asyncio.Event()

    async def detached() -> None:
        await asyncio.sleep(0.01)
        finished.set()

    spawn(detached())
    await asyncio.wait_for(finished.wait(), 1)
