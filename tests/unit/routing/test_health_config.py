"""routing.yaml's ``health:`` section and multi-endpoint keys, as ``routing check`` reports them."""

from __future__ import annotations

import pytest

from app.routing.loader import RoutingError, parse_routing

BASE = """
upstream: {api_key: k}
surfaces:
  chat:
    models:
      m:
        endpoints: [{id: ep-a, name: alpha, weight: 2, region: eu, gpu: H100}, {id: ep-b}]
"""


def test_health_defaults_and_values() -> None:
    loaded = parse_routing(BASE + "health: {poll_interval_s: 2, cooling_failures: 5, cooling_s: 60}\n")
    health = loaded.config.health
    assert (health.poll_interval_s, health.cooling_failures, health.cooling_s) == (2, 5, 60)
    assert parse_routing(BASE).config.health.poll_interval_s == 5


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ("health: {poll_interval_s: 0.01}\n", "health"),
        ("health: {cooling_s: 0}\n", "health"),
        ("health: {cooldown: 5}\n", "health.cooldown"),
    ],
)
def test_bad_health_keys_are_named(extra: str, where: str) -> None:
    with pytest.raises(RoutingError) as caught:
        parse_routing(BASE + extra)
    assert any(path.startswith(where) for path, _ in caught.value.problems)


def test_bad_endpoint_entries_are_named() -> None:
    text = BASE.replace("{id: ep-b}", "{id: ep-b, weight: 0}")
    with pytest.raises(RoutingError) as caught:
        parse_routing(text)
    assert any("endpoints" in path for path, _ in caught.value.problems)


def test_routing_check_prints_endpoint_weights_and_health(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    from pathlib import Path

    from app.cli import cmd_routing_check

    path = Path(str(tmp_path)) / "routing.yaml"
    path.write_text(BASE + "health: {cooling_s: 45}\n")
    assert cmd_routing_check(argparse.Namespace(file=str(path))) == 0
    out = capsys.readouterr().out
    assert "m: endpoints alpha (weight 2), ep-b (weight 1)" in out
    assert "cooling 45s after 3 failures in a row" in out
