"""Fan-out of realtime events to this process's Pusher sockets.

The job WebSockets' hub (``app/jobs/events.py``) with another channel prefix: one Redis
pattern subscription per process, a bounded backlog per subscribed socket, and each event
encoded as its Pusher frame once for all of the owner's sockets.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.jobs.events import EventHub, Frame
from app.realtime.protocol import STATUS_EVENT, channel_for
from app.services import Services

_encode = msgspec.json.encode


def realtime_hub(services: Services) -> EventHub:
    """A hub whose topics are API key ids and whose frames are ``request.status.updated``."""
    return EventHub(services, prefix=services.keys.realtime_events_prefix, reader=_pusher_frame)


def _pusher_frame(owner: str, data: bytes) -> Frame:
    # ``data`` is the event's JSON already: it travels as the frame's data string unchanged.
    frame: dict[str, Any] = {"event": STATUS_EVENT, "channel": channel_for(owner), "data": data.decode()}
    return Frame(_encode(frame), None, False)
