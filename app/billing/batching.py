"""Coalescing one Lua script's calls into one Redis round trip per event-loop turn.

Under load many submits hold money at once, and redis-py's per-command cost (pool checkout,
packing, parsing) was most of what a hold cost the gateway. Calls made in the same loop turn
go out as one pipeline (not a transaction: each call is still its own atomic script, so no
hold's guarantees change); a lone call goes out alone, as it would without batching.
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


class ScriptBatcher:
    """Runs one script (``app.lua.register``'s) for many callers, batched per event loop."""

    def __init__(self, redis: aioredis.Redis, script: AsyncScript) -> None:
        self._redis = redis
        self._script = script
        # Per loop: a process has one, but test servers run their own loops in threads.
        self._pending: WeakKeyDictionary[asyncio.AbstractEventLoop, list[_Call]] = WeakKeyDictionary()
        self._flushing: set[asyncio.Task[None]] = set()  # held so a running flush is never collected

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            # The flush's first step runs next turn, after every call made in this one.
            pending = self._pending[loop] = []
            task = loop.create_task(self._flush(loop))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        pending.append((keys, args, future))
        return await future

    async def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        calls = self._pending.pop(loop, [])
        try:
            results = await self._execute(calls)
        except Exception as exc:  # the round trip failed: every caller hears why
            results = [exc] * len(calls)
        except BaseException as exc:
            for _, _, future in calls:
                if not future.done():
                    future.set_exception(exc)
            raise
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
