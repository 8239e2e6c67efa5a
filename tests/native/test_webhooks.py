"""Webhooks of native jobs: the seed's payload with the task as job_type and the file link."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.native.conftest import Native
from tests.support.servers import ServerThread
from tests.webhooks.receiver import Receiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    hooks = Receiver()
    server = ServerThread(hooks).start()
    yield hooks, server.url
    server.stop()


def test_completed_native_job_webhook(native: Native, receiver: tuple[Receiver, str]) -> None:
    hooks, url = receiver
    token = uuid.uuid4().hex[:8]
    submitted = native.submit("txt2img", json={"model": "Flux1schnell", "prompt": "a fox", "seed": 3,
                                               "webhook_url": f"{url}/{token}/ok"})
    assert submitted.status_code == 200, submitted.text
    request_id = submitted.json()["data"]["request_id"]
    assert native.wait(request_id)["status"] == "done"
    deadline = time.monotonic() + 15
    while not [a for a in hooks.at(token) if a.headers.get("x-dryapi-event") == "job.completed"]:
        assert time.monotonic() < deadline, [a.headers.get("x-dryapi-event") for a in hooks.at(token)]
        time.sleep(0.05)
    (completed,) = [a for a in hooks.at(token) if a.headers.get("x-dryapi-event") == "job.completed"]
    payload = json.loads(completed.body)
    data = payload.get("data", payload)
    assert data["job_request_id"] == request_id and data["job_type"] == "txt2img" and data["status"] == "done"
    image = httpx.get(data["result_url"], timeout=10)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")  # the file itself
