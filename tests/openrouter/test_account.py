"""GET /api/v1/key, /api/v1/credits and /api/v1/generation through the SDK's own methods."""

from __future__ import annotations

import time
from typing import Any

import pytest
from openrouter import OpenRouter, errors

from tests.billing.conftest import INITIAL_USD, new_key
from tests.gateway.conftest import Gateway
from tests.openrouter.conftest import CHAT_MODEL, EMBED_MODEL, sdk

BARE = [{"role": "user", "content": "bare please"}]
BARE_COST = 0.000001  # tests/openrouter/test_chat.py


def _generation(client: OpenRouter, generation_id: str) -> Any:
    """The record is written just after the answer leaves (it never delays it): a moment's wait."""
    deadline = time.monotonic() + 3
    while True:
        try:
            return client.generations.get_generation(id=generation_id).data
        except errors.NotFoundResponseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_key_and_credits_follow_the_ledger(billed: Gateway, billed_key: tuple[str, str]) -> None:
    with sdk(billed, billed_key[0]) as client:
        before = client.api_keys.get_current_key_metadata().data
        assert before.label.startswith("billing-") and before.usage == 0.0
        assert before.limit == INITIAL_USD and before.limit_remaining == INITIAL_USD
        assert before.rate_limit.requests == -1  # the default tier is unlimited
        client.chat.send(model=CHAT_MODEL, messages=BARE)
        after = client.api_keys.get_current_key_metadata().data
        credits = client.credits.get_credits().data
    assert after.usage == after.usage_daily == after.usage_monthly == BARE_COST
    assert after.limit_remaining == pytest.approx(INITIAL_USD - BARE_COST)
    assert (credits.total_credits, credits.total_usage) == (INITIAL_USD, BARE_COST)


def test_key_shows_its_tier_rate_limit(free: Gateway) -> None:
    key, _ = new_key(free, tier="basic")
    with sdk(free, key) as client:
        data = client.api_keys.get_current_key_metadata().data
        credits = client.credits.get_credits().data
    assert (data.rate_limit.requests, data.rate_limit.interval) == (10, "1m")
    assert data.limit is None and data.usage == 0.0  # billing off: no money moves
    assert (credits.total_credits, credits.total_usage) == (0.0, 0.0)


def test_generation_stats_of_a_chat(billed: Gateway, billed_key: tuple[str, str]) -> None:
    with sdk(billed, billed_key[0]) as client:
        result = client.chat.send(model=CHAT_MODEL, messages=BARE)
        found = _generation(client, result.id)
    assert (found.id, found.model, found.provider_name, found.api_type) == (result.id, CHAT_MODEL, "chat-ep",
                                                                            "completions")
    assert (found.tokens_prompt, found.tokens_completion, found.total_cost) == (4, 2, BARE_COST)
    assert found.streamed is False and found.finish_reason == "stop"
    assert found.latency is not None and found.latency >= 0 and found.created_at.endswith("Z")


def test_generation_of_a_stream_and_of_embeddings(free: Gateway, free_key: tuple[str, str]) -> None:
    with sdk(free, free_key[0]) as client:
        chunks = list(client.chat.send(model=CHAT_MODEL, messages=BARE, stream=True,
                                       stream_options={"include_usage": True}))
        streamed = _generation(client, chunks[0].id)
        embedded = client.embeddings.generate(model=EMBED_MODEL, input="one two")
        assert embedded.id is not None
        stats = _generation(client, embedded.id)
    assert streamed.streamed is True and (streamed.tokens_prompt, streamed.tokens_completion) == (4, 2)
    assert streamed.total_cost == BARE_COST  # the record is always priced, billing on or off
    assert (stats.model, stats.api_type, stats.provider_name, stats.tokens_prompt) == (EMBED_MODEL, "embeddings",
                                                                                       "emb-ep", 2)


def test_a_generation_is_visible_only_to_its_key(billed: Gateway, billed_key: tuple[str, str]) -> None:
    with sdk(billed, billed_key[0]) as client:
        result = client.chat.send(model=CHAT_MODEL, messages=BARE)
        _generation(client, result.id)
    other, _ = new_key(billed)
    with sdk(billed, other) as client, pytest.raises(errors.NotFoundResponseError) as caught:
        client.generations.get_generation(id=result.id)
    metadata = caught.value.data.error.metadata
    assert isinstance(metadata, dict) and metadata["code"] == "generation_not_found"
