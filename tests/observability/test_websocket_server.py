"""The WebSocket server settings of ``serve``: permessage-deflate only when the operator asks."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.observability.conftest import issue_key, start_gateway_process
from tests.support.servers import ServerThread

pytestmark = pytest.mark.process  # starts subprocesses


@pytest.mark.parametrize(("setting", "negotiated"), [("", False), ("on", True)])
def test_websocket_compression_follows_the_setting(
    tmp_path: Path, emulator: ServerThread, redis_url: str, redis_prefix: str, setting: str, negotiated: bool
) -> None:
    prefix = f"{redis_prefix}wsz{uuid.uuid4().hex[:6]}:"
    gateway = start_gateway_process(
        tmp_path, f"{emulator.url}/v2", redis_url, prefix, DRYAPI_WS_COMPRESSION=setting
    )
    try:
        key = issue_key(redis_url, prefix).key
        job_id = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}", "prefer": "respond-async"},
        ).json()["id"]
        url = gateway.url.replace("http://", "ws://") + f"/v1/jobs/chat/{job_id}/ws"
        # The client offers permessage-deflate (as browsers do); the server decides.
        with connect(url, additional_headers={"authorization": f"Bearer {key}"}, open_timeout=10) as socket:
            assert socket.response is not None
            extensions = socket.response.headers.get("Sec-WebSocket-Extensions")
            assert (extensions is not None and "permessage-deflate" in extensions) is negotiated
            frames = [json.loads(frame) for frame in socket]
        assert frames[-1]["status"] == "COMPLETED"
    finally:
        assert gateway.terminate() == 0

