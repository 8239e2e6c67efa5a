"""app/limits.py: which windows a request counts against, and OpenAI's reset durations.

(The counting itself runs in Redis; tests/limits cover it end to end.)
"""

from __future__ import annotations

import pytest

from app.limits import DAY, MINUTE, Window, duration, windows_for
from app.routing import parse_routing
from app.routing.schema import LimitsConfig

LIMITS = """
limits:
  jobs_rpm: 60
  tiers:
    free: {rpm: 10, rpd: 100, surfaces: {images: {rpm: 2, rpd: 20}, chat: {rpd: 50}}}
    daily: {rpd: 5}
    surface_only: {surfaces: {embeddings: {rpm: 3}}}
    open: {}
"""


def _config() -> LimitsConfig:
    return parse_routing(LIMITS, env={}).config.limits


def _shape(windows: list[Window]) -> list[tuple[str, int, int]]:
    return [(w.scope, w.period, w.limit) for w in windows]


def test_a_tier_counts_its_own_windows_then_the_surfaces() -> None:
    assert _shape(windows_for(_config(), "free", "images")) == [
        ("all", MINUTE, 10), ("all", DAY, 100), ("images", MINUTE, 2), ("images", DAY, 20),
    ]
    assert _shape(windows_for(_config(), "free", "chat")) == [("all", MINUTE, 10), ("all", DAY, 100), ("chat", DAY, 50)]
    assert _shape(windows_for(_config(), "free", "transcribe")) == [("all", MINUTE, 10), ("all", DAY, 100)]


def test_only_the_windows_that_are_set() -> None:
    assert _shape(windows_for(_config(), "daily", "chat")) == [("all", DAY, 5)]
    assert _shape(windows_for(_config(), "surface_only", "embeddings")) == [("embeddings", MINUTE, 3)]
    assert windows_for(_config(), "surface_only", "chat") == []


def test_unlisted_and_empty_tiers_are_unlimited() -> None:
    assert windows_for(_config(), "premium", "chat") == []
    assert windows_for(_config(), "open", "chat") == []
    assert windows_for(LimitsConfig(), "default", "chat") == []


def test_windows_start_uncounted() -> None:
    assert all(w.count == 0 for w in windows_for(_config(), "free", "images"))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (-3, "0s"), (0.2, "1s"), (12, "12s"), (59.01, "1m0s"), (60, "1m0s"), (63, "1m3s"),
     (3599.5, "1h0m0s"), (3600, "1h0m0s"), (7205, "2h0m5s"), (DAY, "24h0m0s")],
)
def test_reset_durations_are_whole_seconds_rounded_up(seconds: float, text: str) -> None:
    assert duration(seconds) == text
