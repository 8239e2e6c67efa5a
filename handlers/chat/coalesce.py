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
    pending: dict[int, list[str]] = {}  # choice index -> texts not yet yielded, in order
    waiting = 0
    started = False
    last_yield = time.monotonic()
    async with aclosing(deltas):
        async for delta in deltas:
            if delta.finish_reason is not None:
                texts = pending.pop(delta.index, [])
                waiting -= len(texts)
                yield Delta(delta.index, "".join(texts) + delta.text, delta.finish_reason, delta.completion_tokens)
                last_yield = time.monotonic()
                continue
            if not delta.text:
                continue
            pending.setdefault(delta.index, []).append(delta.text)
            waiting += 1
            now = time.monotonic()
            if not started or waiting >= settings.stream_max_deltas or now - last_yield >= settings.stream_interval_s:
                started = True
                for index, texts in pending.items():
                    yield Delta(index, "".join(texts))
                pending.clear()
                waiting = 0
                last_yield = now
    for index, texts in pending.items():  # an engine that ended without finishing a choice
        if texts:
            yield Delta(index, "".join(texts))
