"""The gateway's HTTP server protocol: uvicorn's httptools one, with limits on what a peer may hold.

uvicorn reads a request head of any size for as long as the peer cares to send it, and waits
forever for a body that never comes. Here, per connection:

- the request line and headers must arrive within ``header_timeout_s`` and fit in
  ``max_header_bytes`` (no line over ``MAX_LINE_BYTES``, at most ``MAX_HEADERS`` headers);
- each ``body_timeout_s`` window must bring ``BODY_MIN_BYTES`` of the body (or all the rest),
  unless the app itself is not reading (flow control), so a body trickled a byte a second or
  shorter than its ``Content-Length`` is given up;
- requests the parser refuses (bad request line, Content-Length with Transfer-Encoding, a
  duplicate Content-Length) are answered like every other error: OpenAI's JSON error body.

WebSocket upgrades go through the same head checks before ``app/ws_protocol.py`` sees them.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import httptools
import msgspec
import structlog
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.errors import ErrorBody, ErrorDetail
from app.settings import ServerLimits, load_server_limits

log = structlog.get_logger("dryapi.server")

MAX_LINE_BYTES = 8 * 1024
MAX_HEADERS = 100
# ~550 bytes/s over the default 15 s window: far below any real upload, far above a trickle.
BODY_MIN_BYTES = 8 * 1024


class _Refused(Exception):
    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def refusal_bytes(status: int, message: str, code: str, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A complete ``Connection: close`` response carrying OpenAI's error body."""
    error_type = "invalid_request_error" if status < 500 else "server_error"
    body = msgspec.json.encode(ErrorBody(ErrorDetail(message, error_type, None, code)))
    head = [STATUS_LINE[status]]
    for name, value in default_headers:
        head += [name, b": ", value, b"\r\n"]
    head += [
        b"content-type: application/json\r\n",
        b"content-length: ",
        str(len(body)).encode(),
        b"\r\nconnection: close\r\nx-should-retry: false\r\n\r\n",
    ]
    return b"".join(head) + body


class GatewayHttpProtocol(HttpToolsProtocol):
    # Read from the environment on first use, so every ``serve`` worker process sees the same;
    # ``with_limits`` makes a subclass with its own (servers started in-process, tests).
    limits: ClassVar[ServerLimits | None] = None

    @classmethod
    def with_limits(cls, limits: ServerLimits) -> type[GatewayHttpProtocol]:
        return type(cls.__name__, (cls,), {"limits": limits})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        if cls.limits is None:
            cls.limits = load_server_limits(os.environ)
        self._limits: ServerLimits = cls.limits
        # One timer per connection, re-armed only when it fires early: a keep-alive request
        # moves ``_deadline`` forward instead of allocating timers (two per request otherwise).
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._on_deadline: Callable[[], None] | None = None
        self._in_head = True
        self._head_bytes = 0  # raw bytes of the head so far (a guard before the parser has a header)
        self._head_size = 0  # parsed URL and header bytes (the exact figure)
        self._header_count = 0
        self._body_length: int | None = 0  # declared; None for a chunked body
        self._body_expected = False
        self._body_window_bytes = 0

    # connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_by(self._limits.header_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self._limits.max_header_bytes and not self.transport.is_closing():
            self._refuse(_Refused(431, "The request headers are too large", "headers_too_large"))

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to what the parser refused; ours when one of our limits did.
        context = self._parser_error_context()
        if isinstance(context, _Refused):
            self._refuse(context)
            return
        log.info("invalid_http_request")
        self._refuse(_Refused(400, "Invalid HTTP request received", "invalid_http_request"))

    def _parser_error_context(self) -> BaseException | None:
        # Called while uvicorn handles the parser's error: httptools wraps an exception raised
        # in one of our callbacks, and the original is its context.
        exc = sys.exc_info()[1]
        return exc.__context__ if isinstance(exc, httptools.HttpParserCallbackError) else None

    # parser callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = 0
        self._header_count = 0
        self._body_length = 0
        if self._on_deadline is None:  # a keep-alive request: its head starts now
            self._expect_by(self._limits.header_timeout_s, self._head_timed_out)

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        if self._head_size > MAX_LINE_BYTES:
            raise _Refused(414, "The request URL is too long", "url_too_long")
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # uvicorn's on_header (lower-cased name, Expect: 100-continue) with our counts inlined:
        # this runs for every header of every request.
        size = len(name) + len(value)
        self._head_size += size + 4
        self._header_count += 1
        if size > MAX_LINE_BYTES or self._header_count > MAX_HEADERS:
            raise _Refused(431, "A request header is too large, or there are too many", "headers_too_large")
        name = name.lower()
        if name == b"content-length":
            self._body_length = int(value) if value.isdigit() else 0
        elif name == b"transfer-encoding":
            self._body_length = None
        elif name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._head_size > self._limits.max_header_bytes:
            raise _Refused(431, "The request headers are too large", "headers_too_large")
        self._in_head = False
        self._on_deadline = None
        super().on_headers_complete()
        self._body_expected = self._body_length != 0
        if self._body_expected and not self.parser.should_upgrade():
            self._body_window_bytes = 0
            self._expect_by(self._limits.body_timeout_s, self._body_window_ended)

    def on_body(self, body: bytes) -> None:
        self._body_window_bytes += len(body)
        if self._body_length is not None:
            self._body_length -= len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._body_expected = False
        self._on_deadline = None
        self._in_head = True  # what arrives next is the next request's head
        self._head_bytes = 0
        super().on_message_complete()

    # deadlines -------------------------------------------------------------------------------

    def _expect_by(self, delay: float, on_deadline: Callable[[], None]) -> None:
        """Call ``on_deadline`` in ``delay`` seconds unless the phase ends first (``_on_deadline = None``)."""
        self._deadline = self.loop.time() + delay
        self._on_deadline = on_deadline
        if self._timer is None:
            self._timer = self.loop.call_at(self._deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self._timer = None
        if self._on_deadline is None or self.transport.is_closing():
            return
        if self.loop.time() < self._deadline:  # the phase was moved on meanwhile: wait for its deadline
            self._timer = self.loop.call_at(self._deadline, self._check_deadline)
            return
        on_deadline, self._on_deadline = self._on_deadline, None
        on_deadline()

    def _head_timed_out(self) -> None:
        if self._head_bytes == 0:
            self.transport.close()  # nothing was asked: nothing to answer
            return
        log.info("http_header_timeout", timeout_s=self._limits.header_timeout_s)
        self._refuse(_Refused(408, "The request headers did not arrive in time", "request_timeout"))

    def _body_window_ended(self) -> None:
        if not self._body_expected:
            return
        needed = BODY_MIN_BYTES if self._body_length is None else min(BODY_MIN_BYTES, self._body_length)
        waiting_for_app = self.flow.read_paused or self.cycle.waiting_for_100_continue
        if waiting_for_app or self._body_window_bytes >= needed:
            # Progress, or the app has not asked for the body yet (the peer is not to blame).
            self._body_window_bytes = 0
            self._expect_by(self._limits.body_timeout_s, self._body_window_ended)
            return
        log.info("http_body_timeout", timeout_s=self._limits.body_timeout_s)
        # The app may have answered already (a 401 before reading): then there is nothing to say.
        answer = not self.cycle.response_started
        self._refuse(_Refused(408, "The request body did not arrive in time", "request_timeout"), answer=answer)

    def _refuse(self, refused: _Refused, *, answer: bool = True) -> None:
        """Answer with ``refused`` (unless a response is under way) and close the connection."""
        self._on_deadline = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            answer = answer and not cycle.response_started
            # The app, if it is still running, sees a disconnect; what it sends is dropped.
            cycle.disconnected = True
            cycle.keep_alive = False
            cycle.message_event.set()
        if answer and not self.transport.is_closing():
            headers = self.server_state.default_headers
            self.transport.write(refusal_bytes(refused.status, refused.message, refused.code, headers))
        self.transport.close()
