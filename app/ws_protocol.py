"""The gateway's WebSocket server protocol: uvicorn's sans-I/O one, plus dropping stalled peers.

A peer that stops reading fills its socket; the transport then pauses writing and every send
waits. Nothing in ASGI can abort a connection, and a polite close waits for the buffer to drain,
which for such a peer is never. So the protocol itself aborts a connection whose transport stays
paused for ``STALL_LIMIT_S``: the app's pending send fails, its receive sees the disconnect, and
the socket's memory is freed. The peer sees the connection reset (close code 1006).

A handshake the websockets parser refuses (a line over its 8 KiB, too many headers) leaves
uvicorn waiting on a connection nobody will answer; it is answered with a 400 here and closed.
The HTTP protocol (``app/http_protocol.py``) refuses most such heads before they get here.
"""

from __future__ import annotations

import asyncio

import structlog
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from app.http_protocol import refusal_bytes

log = structlog.get_logger("dryapi.ws")

STALL_LIMIT_S = 10.0


class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
    _stall_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.handshake_initiated and self.conn.handshake_exc is not None and not self.transport.is_closing():
            log.info("ws_handshake_refused", error_type=type(self.conn.handshake_exc).__name__)
            self.transport.write(
                refusal_bytes(400, "Invalid WebSocket handshake", "invalid_handshake", self.default_headers)
            )
            self.transport.close()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall_timer is None:
            self._stall_timer = self.loop.call_later(STALL_LIMIT_S, self._drop_stalled_peer)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_stall_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_stall_timer()
        super().connection_lost(exc)

    def _cancel_stall_timer(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _drop_stalled_peer(self) -> None:
        self._stall_timer = None
        log.info("ws_dropped_stalled_peer", stalled_s=STALL_LIMIT_S)
        self.transport.abort()
