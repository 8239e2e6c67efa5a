"""app/routing/preferences.py: ``models``, ``route`` and ``provider`` as OpenRouter sends them."""

from __future__ import annotations

import pytest

from app.errors import InvalidRequest
from app.routing.preferences import DEFAULT_PREFS, parse_models, parse_provider, take_wishes


def test_model_first_then_models_without_repeats() -> None:
    assert parse_models("a", ["b", "a", "c"], None) == ["a", "b", "c"]
    assert parse_models(None, ["b", "c"], "fallback") == ["b", "c"]
    assert parse_models("a", None, None) == ["a"]
    assert parse_models(None, [], None) == [None]


@pytest.mark.parametrize(
    ("models", "route", "param"),
    [(["a"], "cheapest", "route"), ("a", None, "models"), ([""], None, "models"), (list("abcdefghi"), None, "models")],
)
def test_bad_models_or_route(models: object, route: object, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_models(None, models, route)
    assert caught.value.param == param


def test_provider_parsed_lowercase() -> None:
    prefs = parse_provider({"order": ["Alpha"], "only": ["B"], "ignore": ["c"], "allow_fallbacks": False,
                            "sort": {"by": "throughput", "partition": "model"}})
    assert prefs.order == ("alpha",) and prefs.only == frozenset({"b"}) and prefs.ignore == frozenset({"c"})
    assert prefs.allow_fallbacks is False and prefs.sort == "throughput"
    assert parse_provider(None) is DEFAULT_PREFS


def test_every_bad_provider_key_is_named() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_provider({"order": [3], "sort": "fast", "speed": 1, "allow_fallbacks": 1})
    for name in ("provider.order", "provider.sort", "provider.speed", "provider.allow_fallbacks"):
        assert name in caught.value.message
    with pytest.raises(InvalidRequest):
        parse_provider(["alpha"])


def test_take_wishes_pops_the_routing_keys() -> None:
    body = {"model": "a", "models": ["b"], "route": "fallback", "provider": {"sort": "price"}, "messages": []}
    wishes = take_wishes(body)
    assert body == {"model": "a", "messages": []}
    assert wishes.models == ["a", "b"] and wishes.prefs.sort == "price"


def test_bad_models_and_bad_provider_are_named_together() -> None:
    with pytest.raises(InvalidRequest) as caught:
        take_wishes({"models": "a", "provider": {"sort": "fast"}})
    assert "models" in caught.value.message and "provider.sort" in caught.value.message
