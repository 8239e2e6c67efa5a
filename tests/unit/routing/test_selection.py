"""app/routing/selection.py: which endpoint first, and the order of the rest."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from app.routing import selection
from app.routing.health import HealthBoard
from app.routing.preferences import ProviderPrefs, parse_provider
from app.routing.schema import EndpointRef, HealthConfig

A = EndpointRef(id="ep-a", name="alpha")
B = EndpointRef(id="ep-b", name="beta")
C = EndpointRef(id="ep-c")


def names(refs: list[EndpointRef]) -> list[str]:
    return [ref.provider for ref in refs]


@pytest.fixture(autouse=True)
def _seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "_rand", random.Random(7).random)


def first_counts(refs: list[EndpointRef], board: HealthBoard, prefs: ProviderPrefs, draws: int = 4000) -> Counter[str]:
    return Counter(selection.choose(refs, board, prefs).endpoints[0].provider for _ in range(draws))


def test_weights_share_the_first_choice() -> None:
    heavy = EndpointRef(id="ep-a", name="alpha", weight=3)
    counts = first_counts([heavy, B], HealthBoard(), ProviderPrefs())
    assert 0.70 < counts["alpha"] / 4000 < 0.80


def test_every_endpoint_is_in_the_list_once() -> None:
    chosen = selection.choose([A, B, C], HealthBoard(), ProviderPrefs())
    assert sorted(names(chosen.endpoints)) == ["alpha", "beta", "ep-c"] and chosen.ready == 3


def test_order_puts_named_endpoints_first_in_that_order() -> None:
    chosen = selection.choose([A, B, C], HealthBoard(), parse_provider({"order": ["ep-c", "beta"]}))
    assert names(chosen.endpoints) == ["ep-c", "beta", "alpha"]


def test_only_and_ignore_filter_by_name_or_id() -> None:
    board = HealthBoard()
    assert names(selection.choose([A, B, C], board, parse_provider({"only": ["ALPHA", "ep-c"]})).endpoints) in (
        ["alpha", "ep-c"], ["ep-c", "alpha"])
    assert "alpha" not in names(selection.choose([A, B, C], board, parse_provider({"ignore": ["ep-a"]})).endpoints)
    assert selection.choose([A, B], board, parse_provider({"only": ["nobody"]})).endpoints == []


def test_allow_fallbacks_false_keeps_one() -> None:
    chosen = selection.choose([A, B], HealthBoard(), parse_provider({"order": ["beta"], "allow_fallbacks": False}))
    assert names(chosen.endpoints) == ["beta"]


def test_backlogged_endpoint_goes_after_one_with_free_workers() -> None:
    board = HealthBoard()
    busy, free = board.entry("ep-a"), board.entry("ep-b")
    busy.idle, busy.in_queue = 0, 3
    free.idle = 2
    assert first_counts([A, B], board, ProviderPrefs(), 200) == {"beta": 200}


def test_a_queue_with_free_workers_is_not_a_backlog() -> None:
    board = HealthBoard()
    state = board.entry("ep-a")
    state.idle, state.in_queue = 1, 1
    assert set(first_counts([A, B], board, ProviderPrefs(), 200)) == {"alpha", "beta"}


def test_error_rate_lowers_the_weight() -> None:
    board = HealthBoard()
    board.entry("ep-a").error_rate = 0.5  # weight x 0.25
    counts = first_counts([A, B], board, ProviderPrefs())
    assert 0.15 < counts["alpha"] / 4000 < 0.25


def test_cooling_endpoints_come_last_and_are_not_ready() -> None:
    board = HealthBoard()
    board.entry("ep-a").cool_until = time.time() + 30
    chosen = selection.choose([A, B], board, parse_provider({"order": ["alpha"]}))
    assert names(chosen.endpoints) == ["beta", "alpha"] and chosen.ready == 1
    solo = selection.choose([A], board, ProviderPrefs())
    assert names(solo.endpoints) == ["alpha"] and solo.ready == 0


def test_repeated_failures_cool_then_success_resets() -> None:
    board = HealthBoard(HealthConfig(cooling_failures=2, cooling_s=10))
    board.observe("ep-a", "openai.chat", "503", 0.1)
    board.observe("ep-a", "openai.chat", "200", 0.1)
    board.observe("ep-a", "openai.chat", "timeout", 0.1)
    assert not board.cooling("ep-a", time.time())
    board.observe("ep-a", "runsync", "429", 0.1)
    assert board.cooling("ep-a", time.time()) and not board.cooling("ep-a", time.time() + 11)


def test_client_errors_and_job_polls_say_nothing_about_health() -> None:
    board = HealthBoard(HealthConfig(cooling_failures=1))
    board.observe("ep-a", "openai.chat", "400", 0.1)
    board.observe("ep-a", "status", "503", 0.1)
    board.observe("ep-a", "openai.chat", "cancelled", 0.1)
    assert board.get("ep-a") is None


def test_sort_latency_throughput_price() -> None:
    board = HealthBoard()
    for endpoint_id, p50, idle, queue in (("ep-a", 0.5, 0, 4), ("ep-b", 0.1, 1, 0), ("ep-c", None, 3, 0)):
        state = board.entry(endpoint_id)
        state.latency_p50, state.idle, state.in_queue = p50, idle, queue
    assert names(selection.choose([A, B, C], board, parse_provider({"sort": "latency"})).endpoints) == [
        "beta", "alpha", "ep-c"]  # unmeasured last
    assert names(selection.choose([A, B, C], board, parse_provider({"sort": "throughput"})).endpoints) == [
        "ep-c", "beta", "alpha"]
    heavy = EndpointRef(id="ep-c", weight=5)
    assert names(selection.choose([A, B, heavy], board, parse_provider({"sort": "price"})).endpoints)[0] == "ep-c"


def test_latency_p50_is_computed_off_the_request_path() -> None:
    board = HealthBoard()
    for seconds in (0.3, 0.1, 0.2, 9.0):
        board.succeeded("ep-a", seconds)
    assert board.entry("ep-a").latency_p50 is None
    board.refresh_latency()
    assert board.entry("ep-a").latency_p50 == 0.3


def test_nitro_and_floor_variants_sort_a_models_endpoints() -> None:
    from app.routing.loader import parse_routing
    from app.routing.resolver import resolve_model

    config = parse_routing(
        "upstream: {api_key: k}\nsurfaces:\n  chat:\n    models:\n      m:\n"
        "        endpoints: [{id: ep-a, name: alpha, weight: 5}, {id: ep-b, name: beta}]\n"
    ).config
    board = HealthBoard()
    board.entry("ep-a").idle, board.entry("ep-b").idle = 0, 3
    nitro = resolve_model(config, "chat", "m:nitro", board=board)
    assert [r.provider for r in nitro.routes] == ["beta", "alpha"] and nitro.routes[0].public_model == "m"
    floor = resolve_model(config, "chat", "m:floor", board=board)
    assert [r.provider for r in floor.routes] == ["alpha", "beta"]  # one price: by weight
