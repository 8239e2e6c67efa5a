"""Running ASGI apps with uvicorn: the gateway's WebSocket settings, and a server in a background
thread (local emulator, tests)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import uvicorn

from app.settings import Settings


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ServerThread:
    """A uvicorn server on its own event loop in a daemon thread."""

    def __init__(self, app: Any, port: int | None = None, host: str = "127.0.0.1", **config: Any) -> None:
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        options: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "on"}
        options.update(config)
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, **options))
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"uvicorn-{self.port}")

    def _run(self) -> None:
        asyncio.run(self._server.serve())

    def start(self, timeout: float = 30.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def server_options(settings: Settings, *, from_env: bool = False) -> dict[str, Any]:
    """uvicorn's settings for the gateway: its HTTP protocol (limits on heads, bodies and slow
    peers) and its WebSocket settings. ``serve`` (``from_env``) names the protocol class, which
    reads its limits from the environment in each worker process; servers started in-process
    get a class bound to ``settings.server_limits``.
    """
    from app.http_protocol import GatewayHttpProtocol

    http: Any = "app.http_protocol:GatewayHttpProtocol"
    if not from_env:
        http = GatewayHttpProtocol.with_limits(settings.server_limits)
    return {"http": http, **websocket_options(settings.ws_compression)}


def websocket_options(compression: bool) -> dict[str, Any]:
    """uvicorn's WebSocket settings for the gateway; ``serve`` and the tests use the same.

    uvicorn's sans-I/O protocol (pings on timers, no helper task per connection) with stalled
    peers dropped (``app/ws_protocol.py``). No permessage-deflate
    unless asked for: its two zlib streams are ~35 KiB of every open socket (bench/README.md).
    Clients send nothing large to the gateway, hence the small frame limit.
    """
    return {
        "ws": "app.ws_protocol:GatewayWebSocketProtocol",
        "ws_max_size": 64 * 1024,
        "ws_per_message_deflate": compression,
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
    }
