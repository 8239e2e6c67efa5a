"""A Pusher socket that falls too far behind its events is closed with 4100 (reconnect later)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time

import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from app.jobs.tracker import progress_text
from tests.gateway.conftest import Gateway
from tests.realtime.conftest import APP_SECRET, ws_url


def test_a_socket_that_falls_behind_is_closed_4100(gateway: Gateway) -> None:
    owner = gateway.issue_key("rt-slow")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # holds little: the server's sends back up
    raw.connect(("127.0.0.1", gateway.server.port))
    with connect(ws_url(gateway), sock=raw, max_queue=1) as client:
        socket_id = json.loads(json.loads(client.recv(timeout=10))["data"])["socket_id"]
        channel = f"private-client.{owner.id}"
        digest = hmac.new(APP_SECRET.encode(), f"{socket_id}:{channel}".encode(), hashlib.sha256).hexdigest()
        client.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel,
                                                                      "auth": f"test-app-key:{digest}"}}))
        assert json.loads(client.recv(timeout=10))["event"] == "pusher_internal:subscription_succeeded"
        publisher = redis.Redis.from_url(gateway.settings.redis_url)
        event = json.dumps({"request_id": "r", "status": "in_progress", "preview": "x" * 32_000})
        for _ in range(600):  # ~19 MB: far more than the kernel buffers and the backlog limit
            publisher.publish(gateway.services.keys.realtime_events(owner.id), event)
        publisher.close()
        time.sleep(2)  # not reading: the backlog overflows before the socket counts as stalled
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                client.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4100


@pytest.mark.parametrize(
    ("value", "text"),
    [(45.5, "45.50"), (3, "3.00"), (150, "100.00"), (-1, "0.00"), (float("nan"), "0.00"), ("50", "0.00"),
     (True, "0.00"), (None, "0.00")],
)
def test_progress_is_a_two_decimal_percentage(value: object, text: str) -> None:
    assert progress_text(value) == text
