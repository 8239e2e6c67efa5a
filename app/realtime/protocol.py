"""The Pusher Channels wire protocol (version 7), as far as the gateway speaks it.

Frames are JSON objects ``{"event", "channel"?, "data"}``; a server frame's ``data`` is a
JSON-encoded string. A private channel subscription carries ``auth`` =
``<app_key>:<hex HMAC-SHA256(app_secret, "<socket_id>:<channel>")>``. The only channels
offered are ``private-client.{client_id}``, where the client id is an API key's id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

import msgspec

PROTOCOL_VERSIONS = frozenset({"5", "6", "7"})
ACTIVITY_TIMEOUT_S = 30  # the seed's: a client pings after this long without a message
CHANNEL_PREFIX = "private-client."
STATUS_EVENT = "request.status.updated"

# Connection errors (pusher:error code, then the close code): 4000-4099 do not reconnect,
# 4100-4199 reconnect with back-off, 4200-4299 reconnect at once.
APP_NOT_FOUND = 4001
INVALID_VERSION = 4006
UNSUPPORTED_PROTOCOL = 4007
NO_PROTOCOL = 4008
OVER_CAPACITY = 4100  # used for a socket that falls too far behind its events

# Channel names are Pusher's character set; a client id is an API key id.
_CHANNEL = re.compile(r"^private-client\.([A-Za-z0-9_\-=@,.;]{1,160})$")
_SOCKET_ID = re.compile(r"^\d{1,20}\.\d{1,20}$")

_encode = msgspec.json.encode


def channel_for(client_id: str) -> str:
    return f"{CHANNEL_PREFIX}{client_id}"


def client_of(channel: str) -> str | None:
    """The client id a channel belongs to, or None when it is no channel the gateway offers."""
    match = _CHANNEL.match(channel)
    return match.group(1) if match else None


def valid_socket_id(socket_id: str) -> bool:
    return _SOCKET_ID.match(socket_id) is not None


def new_socket_id() -> str:
    return f"{secrets.randbelow(10**9)}.{secrets.randbelow(10**9)}"


def local_app_secret(signing_secret: str) -> str:
    """The app secret of a loopback gateway given none: every worker derives the same one."""
    return hmac.new(signing_secret.encode(), b"dryapi pusher app secret", hashlib.sha256).hexdigest()


class ChannelSigner:
    """Signs and checks private channel subscriptions with the app's key and secret."""

    def __init__(self, app_key: str, app_secret: str) -> None:
        self.app_key = app_key
        self._secret = (app_secret or secrets.token_hex(32)).encode()  # never an empty HMAC key

    def auth(self, socket_id: str, channel: str) -> str:
        digest = hmac.new(self._secret, f"{socket_id}:{channel}".encode(), hashlib.sha256).hexdigest()
        return f"{self.app_key}:{digest}"

    def verify(self, socket_id: str, channel: str, auth: str) -> bool:
        return hmac.compare_digest(self.auth(socket_id, channel).encode(), auth.encode())


def server_frame(event: str, data: Any, channel: str | None = None) -> bytes:
    """A frame as the server sends it: ``data`` JSON-encoded into a string."""
    frame: dict[str, Any] = {"event": event, "data": _encode(data).decode()}
    if channel is not None:
        frame["channel"] = channel
    return _encode(frame)


def error_frame(code: int | None, message: str) -> bytes:
    return _encode({"event": "pusher:error", "data": {"code": code, "message": message}})


def connection_error(protocol: str | None) -> tuple[int, str] | None:
    """(code, message) when the socket's ``protocol`` query value is one the server cannot speak."""
    if protocol is None or protocol == "":
        return NO_PROTOCOL, "No protocol version supplied"
    if not protocol.isdigit():
        return INVALID_VERSION, "Invalid version string format"
    if protocol not in PROTOCOL_VERSIONS:
        return UNSUPPORTED_PROTOCOL, f"Unsupported protocol version {protocol}; use 7"
    return None


class ClientMessage(msgspec.Struct):
    event: str
    data: Any = None
    channel: str | None = None


def read_client_message(raw: str | bytes) -> ClientMessage | None:
    try:
        return msgspec.json.decode(raw, type=ClientMessage)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
