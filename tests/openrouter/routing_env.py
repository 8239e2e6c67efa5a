"""A gateway in front of the emulator where models have several endpoints, some failing.

Fixtures are imported by name into test_fallbacks/test_endpoints/test_health (kept out of a
conftest so the other issue-13 branches' tests/openrouter fixtures stay theirs).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from tests.gateway.conftest import RUNPOD_KEY, Gateway, start_gateway
from tests.openrouter.workers import CALLS
from tests.support.servers import ServerThread

ROUTING = """
upstream: {{base_url: "{upstream}", api_key: "{runpod_key}"}}
health: {{poll_interval_s: 0.2, cooling_failures: 3, cooling_s: 60}}
surfaces:
  chat:
    default_model: duo
    sync_timeout_s: 10
    models:
      duo:
        endpoints: [{{id: ep-alpha, name: alpha}}, {{id: ep-beta, name: beta}}]
      weighted:
        endpoints: [{{id: ep-alpha, name: alpha, weight: 3}}, {{id: ep-beta, name: beta, weight: 1}}]
      solo: {{endpoint_id: ep-gamma, upstream_model: org/solo}}
      broken: {{endpoint_id: ep-down}}
      failing: {{endpoint_id: ep-failing}}
      unrouted: {{endpoint_id: ""}}
      stream-first: {{endpoint_id: ep-first}}
      stream-second: {{endpoint_id: ep-second}}
      strict:
        endpoints: [{{id: ep-strict, name: strict}}, {{id: ep-gamma, name: gamma}}]
      queued:
        endpoints: [{{id: ep-busy, name: busy}}, {{id: ep-idle, name: idle}}]
      flaky:
        endpoints: [{{id: ep-flaky, name: flaky}}, {{id: ep-steady, name: steady}}]
  embeddings:
    default_model: embed
    sync_timeout_s: 1
    models:
      embed: {{endpoint_id: ep-embed}}
      slow-embed: {{endpoint_id: ep-slow-embed}}
  images:
    default_model: picture
    sync_timeout_s: 5
    models:
      picture: {{endpoint_id: ep-image}}
      broken-picture: {{endpoint_id: ep-broken-image}}
"""

_HANDLERS = {
    "ep-alpha": ("alpha", 4), "ep-beta": ("beta", 4), "ep-gamma": ("gamma", 4), "ep-down": ("down", 2),
    "ep-failing": ("failing_once", 2),
    "ep-first": ("first", 2), "ep-second": ("second", 2), "ep-strict": ("strict", 2), "ep-busy": ("busy", 1),
    "ep-idle": ("idle", 4), "ep-flaky": ("flaky", 2), "ep-steady": ("steady", 2), "ep-embed": ("embeddings", 2),
    "ep-slow-embed": ("slow_embeddings", 2),
    "ep-image": ("images", 2), "ep-broken-image": ("broken_images", 2),
}  # fmt: skip


@pytest.fixture(scope="module")
def emulator() -> Iterator[ServerThread]:
    endpoints = {
        endpoint: EmulatorEndpoint(handler=f"tests.openrouter.workers:{name}", concurrency=concurrency)
        for endpoint, (name, concurrency) in _HANDLERS.items()
    }
    server = ServerThread(create_emulator_app(endpoints, api_key=RUNPOD_KEY)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    # Each module its own prefix: the health keys of one gateway never steer another's choice.
    prefix = f"{redis_prefix}{id(emulator):x}:"
    routing = ROUTING.format(upstream=f"{emulator.url}/v2", runpod_key=RUNPOD_KEY)
    gw = start_gateway(f"{emulator.url}/v2", redis_url, prefix, routing=routing)
    yield gw
    gw.server.stop()


@pytest.fixture(scope="module")
def client(gateway: Gateway) -> openai.OpenAI:
    return gateway.client(gateway.issue_key("or-route").key)


def served_by(completion: Any) -> str:
    """The signing worker's name: ``[alpha] echo: ...`` → ``alpha``."""
    content = completion.choices[0].message.content
    return str(content).split("]", 1)[0].lstrip("[")


def ask(client: openai.OpenAI, text: str = "hi", **extra: Any) -> Any:
    model = extra.pop("model", "duo")
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], extra_body=extra or None
    )


__all__ = ["CALLS", "ask", "client", "emulator", "gateway", "served_by"]
