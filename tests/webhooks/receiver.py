"""A real HTTP webhook receiver (a bare ASGI app under uvicorn) whose behaviour the path picks.

``/{token}/{mode}``: each test uses its own token; the mode is one of
``ok`` (200), ``status{code}``, ``fail{n}`` (500 for the first n arrivals of each delivery id,
then 200), ``redirect`` (302 to ``ok``), ``sleep{ms}`` (then 200), ``hang{ms}`` (the first
arrival of each delivery id sleeps then gets 500; later ones 200).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Arrival:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int

    @property
    def delivery_id(self) -> str:
        return self.headers.get("x-dryapi-delivery-id", "")


class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self._seen: dict[tuple[str, str], int] = defaultdict(int)
        self._lock = threading.Lock()

    def at(self, token: str) -> list[Arrival]:
        with self._lock:
            return [a for a in self.arrivals if a.path.startswith(f"/{token}/")]

    def _decide(self, mode: str, nth: int) -> tuple[int, float]:
        if mode == "ok":
            return 200, 0.0
        if match := re.fullmatch(r"status(\d+)", mode):
            return int(match[1]), 0.0
        if match := re.fullmatch(r"fail(\d+)", mode):
            return (500 if nth < int(match[1]) else 200), 0.0
        if match := re.fullmatch(r"sleep(\d+)", mode):
            return 200, int(match[1]) / 1000
        if match := re.fullmatch(r"hang(\d+)", mode):
            return (500, int(match[1]) / 1000) if nth == 0 else (200, 0.0)
        if mode == "redirect":
            return 302, 0.0
        return 404, 0.0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        with self._lock:
            key = (path, headers.get("x-dryapi-delivery-id", ""))
            nth = self._seen[key]
            self._seen[key] += 1
            status, delay = self._decide(path.rsplit("/", 1)[-1], nth)
            self.arrivals.append(Arrival(path, headers, body, time.time(), status))
        if delay:
            await asyncio.sleep(delay)
        extra = [(b"location", path.rsplit("/", 1)[0].encode() + b"/ok")] if status == 302 else []
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"2"), *extra]})
        await send({"type": "http.response.body", "body": b"ok"})
