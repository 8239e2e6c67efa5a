"""Chat and image workers that sign their answers with their endpoint's name, plus ones that fail.

They run inside the project's RunPod emulator like any handler; ``CALLS`` counts the jobs each
endpoint ran (the emulator runs in this process, so tests read it directly).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

from tests.gateway import workers as gateway_workers

CALLS: Counter[str] = Counter()
Handler = Callable[[dict[str, Any]], AsyncIterator[Any]]


def signed(name: str) -> Handler:
    """The gateway tests' chat worker; a non-streamed answer's text starts with ``[name]``."""

    async def handler(job: dict[str, Any]) -> AsyncIterator[Any]:
        CALLS[name] += 1
        async for piece in gateway_workers.chat(job):
            if isinstance(piece, dict) and piece.get("choices"):
                message = piece["choices"][0]["message"]
                message["content"] = f"[{name}] {message['content']}"
            yield piece

    return handler


def failing(name: str) -> Handler:
    """A worker whose GPU is gone: every job fails (RunPod's OpenAI route answers 500)."""

    async def handler(job: dict[str, Any]) -> AsyncIterator[Any]:
        CALLS[name] += 1
        raise RuntimeError("CUDA error: device lost")
        yield  # an async generator, like the real chat worker

    return handler


alpha = signed("alpha")
beta = signed("beta")
gamma = signed("gamma")
first = signed("first")
second = signed("second")
busy = signed("busy")
idle = signed("idle")
steady = signed("steady")
down = failing("down")
failing_once = failing("failing")  # one test's own: never cooling when it runs
flaky = failing("flaky")
strict = failing("strict")


def embeddings(job: dict[str, Any]) -> Any:
    CALLS["embed"] += 1
    return gateway_workers.embeddings(job)


async def slow_embeddings(job: dict[str, Any]) -> Any:
    """An embedder stuck behind something: answers after the gateway has given up."""
    CALLS["slow-embed"] += 1
    await asyncio.sleep(5)
    return gateway_workers.embeddings(job)


def images(job: dict[str, Any]) -> dict[str, Any]:
    CALLS["image"] += 1
    return gateway_workers.images(job)


def broken_images(job: dict[str, Any]) -> dict[str, Any]:
    CALLS["broken-image"] += 1
    raise RuntimeError("out of memory")
