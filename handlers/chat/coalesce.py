"""Merging a stream of engine deltas, so a stream costs fewer yields.

The runpod SDK posts every yield to RunPod as its own HTTP request; vLLM produces a delta
per token. Deltas of one choice are merged until ``stream_interval_s`` has passed since the
last yield or ``stream_max_deltas`` are waiting. The first text and every finish are yielded
at once, so first-token latency and the end of a choice are never delayed. Pending text is
flushed when the next delta arrives (the engine produces them continuously while it runs).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing

from handlers.chat.engine import ChatSettings, Delta


async def coalesce(deltas: AsyncGenerator[Delta, None], settings: ChatSettings) -> AsyncGenerator[Delta, None]:
    if settings.stream_interval_s <= 0 and settings.stream_max_deltas <= 1:
        async with aclosing(deltas):
            async for delta in deltas:
                yield delta
        return
    pending: dict[int, list[Delta]] = {}  # choice index -> deltas not yet yielded, in order
    waiting = 0
    started = False
    last_yield = time.monotonic()
    async with aclosing(deltas):
        async for delta in deltas:
            if delta.finish_reason is not None:
                held = pending.pop(delta.index, [])
                waiting -= len(held)
                yield _merged(delta.index, [*held, delta], delta)
                last_yield = time.monotonic()
                continue
            if not delta.text and not delta.logprobs:
                continue
            pending.setdefault(delta.index, []).append(delta)
            waiting += 1
            now = time.monotonic()
            if not started or waiting >= settings.stream_max_deltas or now - last_yield >= settings.stream_interval_s:
                started = True
                for index, held in pending.items():
                    yield _merged(index, held)
                pending.clear()
                waiting = 0
                last_yield = now
    for index, held in pending.items():  # an engine that ended without finishing a choice
        if held:
            yield _merged(index, held)


def _merged(index: int, deltas: list[Delta], finish: Delta | None = None) -> Delta:
    logprobs = [entry for d in deltas for entry in d.logprobs or ()] if any(d.logprobs for d in deltas) else None
    text = "".join(d.text for d in deltas)
    if finish is None:
        return Delta(index, text, logprobs=logprobs)
    return Delta(index, text, finish.finish_reason, finish.completion_tokens, logprobs)
