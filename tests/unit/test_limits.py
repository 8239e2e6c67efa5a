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


TASK_LIMITS = """
limits:
  groups:
    whisper: [vid2txt, aud2txt]
  tiers:
    basic:
      rpm: 10
      surfaces: {transcribe: {rpm: 2}}
      tasks:
        vid2txt: {rpd: 5}
        whisper: {rpm: 1, rpd: 10}
        request-status: {rpm: 50}
"""


def _task_config() -> LimitsConfig:
    return parse_routing(TASK_LIMITS, env={}).config.limits


def test_a_native_route_counts_its_own_and_its_groups_windows_only() -> None:
    windows = windows_for(_task_config(), "basic", "transcribe", "vid2txt")
    assert [(w.scope, w.period, w.limit) for w in windows] == [
        ("task:vid2txt", DAY, 5), ("task:whisper", MINUTE, 1), ("task:whisper", DAY, 10),
    ]
    shared = windows_for(_task_config(), "basic", "transcribe", "aud2txt")
    assert [(w.scope, w.limit) for w in shared] == [("task:whisper", 1), ("task:whisper", 10)]


def test_utility_routes_and_v1_routes() -> None:
    status = windows_for(_task_config(), "basic", None, "request-status")
    assert [(w.scope, w.limit) for w in status] == [("task:request-status", 50)]
    v1 = windows_for(_task_config(), "basic", "transcribe")
    assert [(w.scope, w.limit) for w in v1] == [("all", 10), ("transcribe", 2)]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("limits: {tiers: {basic: {tasks: {txt2nothing: {rpm: 1}}}}}", "limits.tiers.basic.tasks.txt2nothing"),
        ("limits: {groups: {g: [txt2img, nope]}}", "limits.groups.g"),
        ("limits: {groups: {txt2img: [img2img]}}", "limits.groups.txt2img"),
        ("limits: {tiers: {basic: {tasks: {txt2img: {rpm: 0}}}}}", "limits.tiers.basic.tasks"),
    ],
)
def test_bad_task_limits_are_named(text: str, path: str) -> None:
    from app.routing import RoutingError

    with pytest.raises(RoutingError) as caught:
        parse_routing(text, env={})
    assert any(p.startswith(path) for p, _ in caught.value.problems), caught.value.problems


def test_the_routes_a_tier_can_limit_are_the_native_ones() -> None:
    from app.routing.schema import LIMITED_ROUTES
    from app.tasks.registry import TASKS

    assert set(LIMITED_ROUTES) == set(TASKS) | {"request-status", "price-calculation"}
