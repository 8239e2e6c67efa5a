"""Raw TCP conversations with a server: what a misbehaving client sends, and what comes back."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import msgspec


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=5)
    return sock


def read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float, bool]:
    """Everything the server sends until it closes: (bytes, seconds taken, whether it closed)."""
    started = time.monotonic()
    received = b""
    while time.monotonic() - started < limit_s:
        sock.settimeout(max(0.05, limit_s - (time.monotonic() - started)))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received, time.monotonic() - started, True
        if not chunk:
            return received, time.monotonic() - started, True
        received += chunk
    return received, time.monotonic() - started, False


def status_and_error(raw: bytes) -> tuple[int, dict[str, object]]:
    """The status code and the OpenAI error object of a raw HTTP response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    error: dict[str, object] = msgspec.json.decode(body)["error"]
    return status, error
