"""A worker's client error reaches the client as the same 400 in every form it can travel.

Yielded or returned, as a dict or as a JSON string: the emulator shapes each the way the
runpod SDK does (a yielded dict becomes its Python repr), and the gateway decodes each back
to the structured error. Real gateway, real emulator, real ``openai`` SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from app.errors import InvalidRequest
from app.upstream.worker_errors import worker_error
from tests.emulator import workers
from tests.gateway.conftest import RUNPOD_KEY, Gateway, start_gateway
from tests.support.servers import ServerThread

ROUTING = """
upstream: {{base_url: "{upstream}", api_key: "{key}"}}
surfaces:
  chat:
    default_model: yields
    sync_timeout_s: 10
    models:
      yields: {{endpoint_id: yields-ep}}
      returns: {{endpoint_id: returns-ep}}
"""


@pytest.fixture(scope="module")
def gateway(redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    endpoints = {
        "yields-ep": EmulatorEndpoint(handler=workers.yields_error),
        "returns-ep": EmulatorEndpoint(handler=workers.returns_error),
    }
    emulator = ServerThread(create_emulator_app(endpoints, api_key=RUNPOD_KEY)).start()
    upstream = f"{emulator.url}/v2"
    gw = start_gateway(upstream, redis_url, redis_prefix, routing=ROUTING.format(upstream=upstream, key=RUNPOD_KEY))
    yield gw
    gw.server.stop()
    emulator.stop()


@pytest.mark.parametrize(
    ("model", "form"), [("yields", "dict"), ("yields", "json"), ("returns", "dict"), ("returns", "json")]
)
def test_every_error_form_is_the_same_400(gateway: Gateway, model: str, form: str) -> None:
    client = gateway.client(gateway.issue_key().key)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": form}])
    error = caught.value
    assert error.status_code == 400
    assert (error.code, error.param, error.type) == ("bad_msg", "messages", "invalid_request_error")
    assert error.body == {**workers.CLIENT_ERROR}


@pytest.mark.parametrize(
    ("model", "form"), [("yields", "dict"), ("yields", "json"), ("returns", "dict"), ("returns", "json")]
)
def test_every_error_form_is_the_same_error_event_in_a_stream(gateway: Gateway, model: str, form: str) -> None:
    client = gateway.client(gateway.issue_key().key)
    with pytest.raises(openai.APIError) as caught:
        list(client.chat.completions.create(model=model, messages=[{"role": "user", "content": form}], stream=True))
    error = caught.value
    assert (error.code, error.param, error.type) == ("bad_msg", "messages", "invalid_request_error")
    assert error.message == "cannot do that"


def test_the_gateway_decodes_each_string_the_sdk_makes() -> None:
    repr_form = worker_error(str(workers.CLIENT_ERROR))  # a yielded dict, after rp_job.handle_job
    assert isinstance(repr_form, InvalidRequest) and repr_form.param == "messages"
    json_form = worker_error(json.dumps(workers.CLIENT_ERROR))
    assert isinstance(json_form, InvalidRequest) and json_form.message == repr_form.message
    generator_crash = worker_error("handler: disk on fire \ntraceback: Traceback (most recent call last):\n  File x")
    assert generator_crash.message == "disk on fire" and generator_crash.status_code == 502
    assert worker_error("{" * 50_000).status_code == 502  # unparseable: described, never a crash
    assert worker_error("{'a': __import__('os')}").status_code == 502  # literals only
