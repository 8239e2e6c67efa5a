"""``models: [...]`` fallbacks on chat, embeddings and images (the handlers, so /v1 and /api/v1)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.gateway.conftest import RUNPOD_KEY, Gateway
from tests.openrouter.routing_env import CALLS, ask, client, emulator, gateway, served_by
from tests.support.servers import ServerThread

__all__ = ["client", "emulator", "gateway"]


def test_falls_back_through_an_unknown_and_a_failing_model(client: openai.OpenAI) -> None:
    before = CALLS["failing"]
    completion = client.chat.completions.create(
        model=openai.NOT_GIVEN,  # type: ignore[call-overload]
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"models": ["no-such-model", "failing", "solo"], "route": "fallback"},
    )
    assert completion.model == "solo"  # the response names the model that served
    assert served_by(completion) == "gamma"
    assert CALLS["failing"] == before + 1  # the failing model was really tried


def test_model_comes_first_then_models(client: openai.OpenAI) -> None:
    completion = ask(client, model="unrouted", models=["broken", "solo"])
    assert completion.model == "solo"


def test_first_model_that_works_serves_and_later_ones_are_not_called(client: openai.OpenAI) -> None:
    before = CALLS["gamma"]
    completion = ask(client, model="duo", models=["solo"])
    assert completion.model == "duo"
    assert served_by(completion) in ("alpha", "beta")
    assert CALLS["gamma"] == before


def test_all_models_failing_answers_the_last_error_naming_the_tried_models(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        ask(client, model="broken", models=["unrouted", "still-unknown"])
    message = caught.value.body["message"]  # type: ignore[index]
    assert "still-unknown" in message and "tried models: broken" in message
    assert "device lost" not in message


def test_a_client_error_is_not_retried_on_the_next_model(gateway: Gateway, client: openai.OpenAI) -> None:
    before = CALLS["gamma"]
    with pytest.raises(openai.BadRequestError):
        ask(client, "fail", model="duo", models=["solo"])  # the worker refuses the request itself
    assert CALLS["gamma"] == before


def test_stream_falls_back_before_the_first_byte(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="broken", messages=[{"role": "user", "content": "hi there"}], stream=True,
        extra_body={"models": ["stream-second"]},
    )
    chunks = list(stream)
    assert {chunk.model for chunk in chunks} == {"stream-second"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() == "echo: hi there"


def test_stream_whose_worker_fails_before_output_falls_back(client: openai.OpenAI) -> None:
    """RunPod's stream answers 200 and then the worker's error: nothing reached the client yet."""
    before = CALLS["strict"]
    stream = client.chat.completions.create(
        model="strict", messages=[{"role": "user", "content": "hi there"}], stream=True,
        extra_body={"provider": {"order": ["strict"]}},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() == "echo: hi there"
    assert CALLS["strict"] == before + 1  # tried first, failed before any output, then gamma served


def test_stream_failing_before_output_with_nothing_left_ends_with_the_error(client: openai.OpenAI) -> None:
    """The last candidate streams at once, as without fallbacks: its failure is the stream's error event."""
    stream = client.chat.completions.create(
        model="strict", messages=[{"role": "user", "content": "hi"}], stream=True,
        extra_body={"provider": {"only": ["strict"]}},
    )
    with pytest.raises(openai.APIError) as caught:
        list(stream)
    assert "device lost" in caught.value.message and "Traceback" not in caught.value.message


def test_no_fallback_once_a_stream_has_started(client: openai.OpenAI) -> None:
    before = CALLS["second"]
    stream = client.chat.completions.create(
        model="stream-first", messages=[{"role": "user", "content": "break midway"}], stream=True,
        extra_body={"models": ["stream-second"]},
    )
    received = []
    with pytest.raises(openai.APIError, match="GPU fell off"):
        for chunk in stream:
            received.append(chunk)
    assert received and {chunk.model for chunk in received} == {"stream-first"}
    assert CALLS["second"] == before


def test_a_client_leaving_while_the_first_event_is_awaited_cancels_the_job(
    gateway: Gateway, emulator: ServerThread, client: openai.OpenAI
) -> None:
    def in_progress() -> int:
        health = httpx.get(f"{emulator.url}/v2/ep-first/health", headers={"authorization": RUNPOD_KEY}).json()
        return int(health["jobs"]["inProgress"])

    body = {"model": "stream-first", "models": ["stream-second"], "stream": True,
            "messages": [{"role": "user", "content": "slow 6"}]}
    with pytest.raises(httpx.ReadTimeout):  # headers wait for the first event; the client gives up first
        httpx.post(f"{gateway.url}/v1/chat/completions", json=body,
                   headers={"authorization": f"Bearer {client.api_key}"}, timeout=1.5)
    deadline = time.monotonic() + 4
    while in_progress():
        assert time.monotonic() < deadline, "the job kept running after the client left"
        time.sleep(0.1)


def test_embeddings_fall_back(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="no-such-embedder", input="hello", extra_body={"models": ["embed"]})
    assert result.model == "embed" and len(result.data) == 1


def test_a_timeout_falls_back(client: openai.OpenAI) -> None:
    before = CALLS["slow-embed"]
    started = time.monotonic()
    result = client.embeddings.create(model="slow-embed", input="hello", extra_body={"models": ["embed"]})
    assert result.model == "embed" and time.monotonic() - started < 4  # the slow worker answers after 5 s
    assert CALLS["slow-embed"] == before + 1


def test_images_fall_back_past_a_failing_worker(client: openai.OpenAI) -> None:
    before = CALLS["broken-image"]
    result = client.images.generate(
        model="broken-picture", prompt="a lighthouse", response_format="b64_json", extra_body={"models": ["picture"]}
    )
    assert result.data and result.data[0].b64_json
    assert CALLS["broken-image"] == before + 1


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"route": "cheapest"}, "route"),
        ({"models": "solo"}, "models"),
        ({"models": ["solo", 3]}, "models"),
        ({"models": [f"m{i}" for i in range(9)]}, "models"),
    ],
)
def test_bad_fallback_fields_are_400_naming_them(gateway: Gateway, client: openai.OpenAI,
                                                  extra: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, **extra)
    assert caught.value.body["param"] == param  # type: ignore[index]


def test_routing_fields_never_reach_the_worker(gateway: Gateway, client: openai.OpenAI) -> None:
    # The test worker lists every unknown body key it received in system_fingerprint.
    completion = ask(client, model="solo", models=["duo"], route="fallback", provider={"sort": "latency"},
                     temperature=0.5)
    assert completion.system_fingerprint == "temperature"


def test_fallbacks_are_counted_in_metrics(gateway: Gateway, client: openai.OpenAI) -> None:
    ask(client, model="no-such-model", models=["solo"])
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'dryapi_fallbacks_total{endpoint="-",reason="unknown_model",surface="chat"}' in metrics
    assert 'dryapi_endpoint_chosen_total{endpoint="ep-gamma",surface="chat"}' in metrics


def test_plain_requests_behave_as_before(gateway: Gateway, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        ask(client, model="no-such-model")
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "unrouted", "messages": [
        {"role": "user", "content": "hi"}]}, headers={"authorization": f"Bearer {client.api_key}"})
    assert response.status_code == 503
