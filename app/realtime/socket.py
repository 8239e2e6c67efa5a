"""GET /app/{app_key}: the built-in Pusher Channels server (protocol 7).

A socket opens with ``pusher:connection_established``; the client subscribes to its own
``private-client.{client_id}`` channel with an ``auth`` from ``POST /broadcasting/auth``, and
then gets every ``request.status.updated`` of its jobs. The connection's own task reads the
client's messages (pings, subscriptions); each subscription has one small task that forwards
its events. A socket that falls ``QUEUE_LIMIT`` events behind is closed with 4100 (reconnect
with back-off); one that stops reading is dropped by the server protocol (``app/ws_protocol.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from app.jobs.events import EventHub, Subscription
from app.realtime import protocol
from app.realtime.protocol import ChannelSigner, ClientMessage

log = structlog.get_logger("dryapi.realtime")

MAX_CHANNELS = 8  # one per API key the client holds; more is a misbehaving client
_PONG = protocol.server_frame("pusher:pong", {})


class _Connection:
    __slots__ = ("_forwarders", "_hub", "_signer", "_socket", "socket_id")

    def __init__(self, socket: WebSocket[Any, Any, Any], hub: EventHub, signer: ChannelSigner) -> None:
        self._socket = socket
        self._hub = hub
        self._signer = signer
        self.socket_id = protocol.new_socket_id()
        self._forwarders: dict[str, tuple[Subscription, asyncio.Task[None]]] = {}

    async def send(self, frame: bytes) -> None:
        await self._socket.send_data(frame.decode(), mode="text")

    async def serve(self) -> None:
        established = {"socket_id": self.socket_id, "activity_timeout": protocol.ACTIVITY_TIMEOUT_S}
        await self.send(protocol.server_frame("pusher:connection_established", established))
        while True:
            raw = await self._socket.receive_data(mode="text")
            message = protocol.read_client_message(raw)
            if message is None:
                await self.send(protocol.error_frame(None, "Messages must be JSON objects with an event"))
            elif message.event == "pusher:ping":
                await self.send(_PONG)
            elif message.event == "pusher:subscribe":
                await self._subscribe(message)
            elif message.event == "pusher:unsubscribe":
                channel = message.data.get("channel") if isinstance(message.data, dict) else None
                if isinstance(channel, str):
                    self._unsubscribe(channel)
            elif message.event.startswith("client-"):
                await self.send(protocol.error_frame(None, "Client events are not supported"))
            elif message.event != "pusher:pong":
                await self.send(protocol.error_frame(None, f"Unsupported event {message.event[:64]!r}"))

    async def _subscribe(self, message: ClientMessage) -> None:
        data = message.data if isinstance(message.data, dict) else {}
        channel, auth = data.get("channel"), data.get("auth")
        if not isinstance(channel, str) or not channel:
            await self.send(protocol.error_frame(None, "pusher:subscribe needs data.channel"))
            return
        client_id = protocol.client_of(channel)
        if client_id is None:
            await self._refuse(channel, 404, "Only private-client.{client_id} channels exist")
        elif not isinstance(auth, str) or not self._signer.verify(self.socket_id, channel, auth):
            await self._refuse(channel, 401, "Invalid signature: get auth from POST /broadcasting/auth")
        elif channel in self._forwarders:
            await self.send(protocol.server_frame("pusher_internal:subscription_succeeded", {}, channel))
        elif len(self._forwarders) >= MAX_CHANNELS:
            await self._refuse(channel, 429, f"At most {MAX_CHANNELS} channels per connection")
        else:
            subscription = await self._hub.subscribe(client_id)  # before the reply: no event is missed
            task = asyncio.create_task(self._forward(subscription))
            self._forwarders[channel] = (subscription, task)
            await self.send(protocol.server_frame("pusher_internal:subscription_succeeded", {}, channel))

    async def _refuse(self, channel: str, status: int, error: str) -> None:
        # soketi's shape: pusher-js hands it to the channel's "pusher:subscription_error" listeners.
        payload = {"type": "AuthError", "error": error, "status": status}
        await self.send(protocol.server_frame("pusher:subscription_error", payload, channel))

    def _unsubscribe(self, channel: str) -> None:
        entry = self._forwarders.pop(channel, None)
        if entry is not None:
            subscription, task = entry
            task.cancel()
            self._hub.unsubscribe(subscription)

    async def _forward(self, subscription: Subscription) -> None:
        try:
            while True:
                frame, _ = await subscription.next()
                if subscription.overflowed:
                    log.info("realtime_dropped_slow_client")
                    await self.send(protocol.error_frame(protocol.OVER_CAPACITY, "Client too slow"))
                    await self._socket.close(code=protocol.OVER_CAPACITY, reason="client too slow")
                    return
                await self.send(frame)
        except (WebSocketDisconnect, OSError, RuntimeError):  # the client is gone; serve() ends too
            return

    def close(self) -> None:
        for channel in tuple(self._forwarders):
            self._unsubscribe(channel)


@websocket("/app/{app_key:str}", exclude_from_auth=True)
async def pusher_socket(socket: WebSocket[Any, Any, Any], app_key: str) -> None:
    state = socket.app.state
    signer: ChannelSigner = state.channel_signer
    await socket.accept()
    refused = protocol.connection_error(socket.query_params.get("protocol"))
    if app_key != signer.app_key:
        refused = (protocol.APP_NOT_FOUND, f"App key {app_key[:64]} not in this cluster")
    if refused is not None:
        code, message = refused
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
            await socket.send_data(protocol.error_frame(code, message).decode(), mode="text")
            await socket.close(code=code, reason=message[:120])
        return
    connection = _Connection(socket, state.realtime_hub, signer)
    try:
        await connection.serve()
    except (WebSocketDisconnect, OSError):
        return
    finally:
        connection.close()
