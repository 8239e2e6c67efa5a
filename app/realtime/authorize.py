"""POST /broadcasting/auth: the signature a Pusher client needs to subscribe to its channel.

The caller's API key (Bearer) names the one channel it may have, ``private-client.{key id}``.
pusher-js posts ``socket_id`` and ``channel_name`` form-encoded; other clients send JSON.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import msgspec
from litestar import Request, post

from app.auth import principal_of
from app.errors import InvalidRequest, PermissionDenied
from app.realtime import protocol
from app.realtime.protocol import ChannelSigner

_FIELDS = ("socket_id", "channel_name")


async def _fields(request: Request[Any, Any, Any]) -> dict[str, Any]:
    raw = await request.body()
    if request.content_type[0] == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(raw.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            raise InvalidRequest("The form body is not UTF-8") from None
        return {name: values[0] for name, values in form.items()}
    try:
        body = msgspec.json.decode(raw) if raw else {}
    except msgspec.DecodeError:
        raise InvalidRequest("The body must be JSON or a form with socket_id and channel_name") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object with socket_id and channel_name")
    return body


@post(
    "/broadcasting/auth",
    status_code=200,
    summary="Authorise a Pusher channel subscription",
    description=(
        "Signs `socket_id:channel_name` for the realtime server. The only channel a key may "
        "subscribe to is `private-client.{key id}`."
    ),
)
async def broadcasting_auth(request: Request[Any, Any, Any]) -> dict[str, str]:
    signer: ChannelSigner = request.app.state.channel_signer
    fields = await _fields(request)
    missing = [name for name in _FIELDS if not isinstance(fields.get(name), str) or not fields[name]]
    if missing:
        raise InvalidRequest(f"Missing or empty: {', '.join(missing)}", param=missing[0], code="missing_field")
    socket_id, channel = str(fields["socket_id"]), str(fields["channel_name"])
    bad = []
    if not protocol.valid_socket_id(socket_id):
        bad.append(("socket_id", "socket_id must look like 1234.5678"))
    client_id = protocol.client_of(channel)
    if client_id is None:
        bad.append(("channel_name", "channel_name must be private-client.{client_id}"))
    if bad:
        raise InvalidRequest("; ".join(message for _, message in bad), param=bad[0][0])
    if client_id != principal_of(request).key_id:
        raise PermissionDenied("An API key may subscribe only to its own channel", param="channel_name")
    return {"auth": signer.auth(socket_id, channel)}
