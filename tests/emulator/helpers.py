"""The emulator on a real loopback port, and helpers to poll it over real HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx

from app.emulator import EmulatorEndpoint, create_emulator_app
from tests.emulator import workers
from tests.support.servers import serve

T = TypeVar("T")


@contextmanager
def running(endpoints: dict[str, EmulatorEndpoint], **options: Any) -> Iterator[httpx.Client]:
    """An emulator app served on a free port; a client whose base URL is its ``/v2``."""
    with (
        serve(create_emulator_app(endpoints, **options)) as server,
        httpx.Client(base_url=f"{server.url}/v2", timeout=10, trust_env=False) as client,
    ):
        yield client


def poll(fetch: Callable[[], T], done: Callable[[T], bool], timeout: float = 5.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"condition not met in {timeout}s; last value: {value!r}"
        time.sleep(0.01)


def status(client: httpx.Client, endpoint: str, job_id: str) -> dict[str, Any]:
    response = client.get(f"/{endpoint}/status/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_status(client: httpx.Client, endpoint: str, job_id: str, *wanted: str, timeout: float = 5.0) -> dict[str, Any]:
    return poll(lambda: status(client, endpoint, job_id), lambda body: body["status"] in wanted, timeout)


def run(client: httpx.Client, endpoint: str, job_input: dict[str, Any], **extra: Any) -> str:
    response = client.post(f"/{endpoint}/run", json={"input": job_input, **extra})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "IN_QUEUE" and set(body) == {"id", "status"}
    job_id: str = body["id"]
    return job_id


def health(client: httpx.Client, endpoint: str) -> dict[str, Any]:
    response = client.get(f"/{endpoint}/health")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def new_gate() -> str:
    name = uuid.uuid4().hex
    workers.gate(name)
    return name


def open_gate(name: str) -> None:
    workers.gate(name).set()
