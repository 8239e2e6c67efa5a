"""Run ASGI apps on real loopback ports for the duration of a test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from litestar import Litestar

from app.serving import ServerThread, free_port

__all__ = ["ServerThread", "free_port", "serve", "stub_app"]


@contextmanager
def serve(app: Any, **config: Any) -> Iterator[ServerThread]:
    server = ServerThread(app, **config).start()
    try:
        yield server
    finally:
        server.stop()


def stub_app(*route_handlers: Any) -> Litestar:
    """A bare app for a stand-in server (a media host, a throttling upstream, RunPod's REST API).

    Litestar's default logging config would reconfigure the process' root logger with a handler
    on the stderr of the moment: pytest's capture of one test, closed by the next ("Logging error").
    """
    return Litestar(list(route_handlers), logging_config=None)
