"""Coalescing one Lua script's calls into one Redis round trip (group commit).

Under load many submits hold money at once, and redis-py's per-command cost (pool checkout,
packing, parsing) was most of what a hold cost the gateway. A call made while none is in
flight goes out at once, alone; calls made while one is in flight wait for it and then go out
together, as one pipeline (not a transaction: each call is still its own atomic script, so no
hold's guarantees change). An idle gateway pays nothing extra; a busy one sends one round
trip per batch instead of one per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

_Call = tuple[Sequence[str], Sequence[Any], "asyncio.Future[Any]"]


class _LoopState:
    __slots__ = ("busy", "queue")

    def __init__(self) -> None:
        self.busy = False  # a call or a batch is in flight
        self.queue: list[_Call] = []


class ScriptBatcher:
    """Runs one script (``app.lua.register``'s) for many callers, batched per event loop."""

    def __init__(self, redis: aioredis.Redis, script: AsyncScript) -> None:
        self._redis = redis
        self._script = script
        # Per loop: a process has one, but test servers run their own loops in threads.
        self._states: WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = WeakKeyDictionary()
        self._flushing: set[asyncio.Task[None]] = set()  # held so a running flush is never collected

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = _LoopState()
        if not state.busy:
            state.busy = True
            try:
                return await self._script(keys=keys, args=args)
            finally:
                self._after(loop, state)
        future: asyncio.Future[Any] = loop.create_future()
        state.queue.append((keys, args, future))
        return await future

    def _after(self, loop: asyncio.AbstractEventLoop, state: _LoopState) -> None:
        """A round trip ended: send what queued up meanwhile, or go idle."""
        if not state.queue:
            state.busy = False
            return
        task = loop.create_task(self._flush(loop, state))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self, loop: asyncio.AbstractEventLoop, state: _LoopState) -> None:
        calls, state.queue = state.queue, []
        try:
            results = await self._execute(calls)
        except Exception as exc:  # the round trip failed: every caller hears why
            results = [exc] * len(calls)
        except BaseException as exc:
            for _, _, future in calls:
                if not future.done():
                    future.set_exception(exc)
            raise
        finally:
            self._after(loop, state)
        for (_, _, future), result in zip(calls, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(self, calls: list[_Call]) -> list[Any]:
        if len(calls) == 1:
            keys, args, _ = calls[0]
            return [await self._script(keys=keys, args=args)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, args, _ in calls:
                pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        if any(isinstance(result, NoScriptError) for result in results):
            # Redis lost its script cache (a restart, SCRIPT FLUSH): load it and run those again.
            for index, (keys, args, _) in enumerate(calls):
                if isinstance(results[index], NoScriptError):
                    results[index] = await self._script(keys=keys, args=args)
        return results
