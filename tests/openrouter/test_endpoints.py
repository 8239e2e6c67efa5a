"""Several RunPod endpoints per model: weights and OpenRouter's ``provider`` preferences."""

from __future__ import annotations

from collections import Counter
from typing import Any

import openai
import pytest

from tests.gateway.conftest import Gateway
from tests.openrouter.routing_env import CALLS, ask, client, emulator, gateway, served_by

__all__ = ["client", "emulator", "gateway"]


def _servers(client: openai.OpenAI, count: int, **extra: Any) -> Counter[str]:
    return Counter(served_by(ask(client, **extra)) for _ in range(count))


def test_both_endpoints_serve_a_model_by_default(client: openai.OpenAI) -> None:
    assert set(_servers(client, 24)) == {"alpha", "beta"}


def test_provider_order_is_honoured(client: openai.OpenAI) -> None:
    assert _servers(client, 8, provider={"order": ["beta", "alpha"]}) == {"beta": 8}
    assert _servers(client, 8, provider={"order": ["Alpha"]}) == {"alpha": 8}  # names match without case


def test_provider_only_and_ignore(client: openai.OpenAI) -> None:
    assert _servers(client, 8, provider={"only": ["alpha"]}) == {"alpha": 8}
    assert _servers(client, 8, provider={"ignore": ["alpha"]}) == {"beta": 8}
    assert _servers(client, 4, provider={"only": ["ep-beta"]}) == {"beta": 4}  # or by endpoint id


def test_only_matching_nothing_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        ask(client, provider={"only": ["nobody"]})
    assert caught.value.body["code"] == "no_matching_endpoint"  # type: ignore[index]


def test_weights_are_roughly_honoured(client: openai.OpenAI) -> None:
    counts = _servers(client, 40, model="weighted")  # alpha weight 3, beta 1: about 30 / 10
    assert counts["alpha"] >= 20 and counts["beta"] >= 3, counts


def test_next_endpoint_of_the_model_takes_over_a_failure(gateway: Gateway, client: openai.OpenAI) -> None:
    before = CALLS["strict"]
    completion = ask(client, model="strict", provider={"order": ["strict"]})
    assert completion.model == "strict" and served_by(completion) == "gamma"
    assert CALLS["strict"] == before + 1


def test_allow_fallbacks_false_tries_only_the_first_endpoint(client: openai.OpenAI) -> None:
    before = CALLS["gamma"]
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, model="strict", provider={"order": ["strict"], "allow_fallbacks": False})
    assert caught.value.status_code == 502
    assert CALLS["gamma"] == before


def test_sort_price_and_throughput_are_accepted(client: openai.OpenAI) -> None:
    for sort in ("price", "throughput", "latency", {"by": "latency"}):
        assert served_by(ask(client, provider={"sort": sort})) in ("alpha", "beta")


def test_openrouter_keys_without_meaning_here_are_accepted(client: openai.OpenAI) -> None:
    prefs = {"data_collection": "deny", "zdr": True, "require_parameters": False, "quantizations": ["fp8"]}
    assert served_by(ask(client, provider=prefs)) in ("alpha", "beta")


@pytest.mark.parametrize(
    ("provider", "named"),
    [
        ({"prefer": ["alpha"]}, "provider.prefer"),
        ({"order": "alpha"}, "provider.order"),
        ({"only": [1]}, "provider.only"),
        ({"allow_fallbacks": "no"}, "provider.allow_fallbacks"),
        ({"sort": "fastest"}, "provider.sort"),
        ({"sort": {"by": "latency", "how": 1}}, "provider.sort"),
    ],
)
def test_bad_provider_preferences_are_400_naming_the_field(client: openai.OpenAI, provider: object, named: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, provider=provider)
    assert named in caught.value.body["message"]  # type: ignore[index]


def test_every_bad_provider_field_is_named(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, provider={"sort": "fastest", "colour": "red"})
    message = caught.value.body["message"]  # type: ignore[index]
    assert "provider.sort" in message and "provider.colour" in message


def test_async_jobs_use_the_chosen_endpoint(gateway: Gateway, client: openai.OpenAI) -> None:
    before = CALLS["beta"]
    response = client.chat.completions.with_raw_response.create(
        model="duo", messages=[{"role": "user", "content": "later"}], extra_headers={"prefer": "respond-async"},
        extra_body={"provider": {"only": ["beta"]}},
    )
    assert response.http_response.status_code == 202
    job = response.http_response.json()
    record = _wait_job(gateway, client, job["id"])
    assert record["status"] == "COMPLETED" and CALLS["beta"] == before + 1


def _wait_job(gateway: Gateway, client: openai.OpenAI, job_id: str) -> dict[str, object]:
    import time

    import httpx

    deadline = time.monotonic() + 10
    while True:
        body: dict[str, object] = httpx.get(f"{gateway.url}/v1/jobs/chat/{job_id}",
                                            headers={"authorization": f"Bearer {client.api_key}"}).json()
        if body.get("status") in ("COMPLETED", "FAILED") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)
