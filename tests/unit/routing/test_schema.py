"""app/routing/schema.py: defaults, strictness and RunPod's units."""

from __future__ import annotations

import msgspec
import pytest

from app.routing.schema import LimitsConfig, ModelRoute, Policy, RoutingConfig, SurfaceConfig, TierLimits, Upstream


def test_policy_is_sent_to_runpod_in_milliseconds() -> None:
    assert Policy().to_runpod() == {"executionTimeout": 600_000, "ttl": 86_400_000, "lowPriority": False}
    assert Policy(execution_timeout_s=5, ttl_s=10, low_priority=True).to_runpod() == {
        "executionTimeout": 5000,
        "ttl": 10_000,
        "lowPriority": True,
    }


@pytest.mark.parametrize(
    ("raw", "schema"),
    [
        ({"execution_timeout_s": 4}, Policy),
        ({"execution_timeout_s": 7 * 86400 + 1}, Policy),
        ({"ttl_s": 9}, Policy),
        ({"request_timeout_s": 0}, Upstream),
        ({"mode": "fast"}, SurfaceConfig),
        ({"sync_timeout_s": 0}, SurfaceConfig),
        ({"jobs_rpm": 0}, LimitsConfig),
        ({"surfaces": {"hologram": {"rpm": 1}}}, TierLimits),
        ({"endpoint": "typo"}, ModelRoute),
    ],
)
def test_out_of_range_unknown_and_misspelled_values_are_refused(raw: dict[str, object], schema: type) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(raw, schema)


def test_defaults_describe_a_sync_gateway_in_front_of_runpod() -> None:
    config = RoutingConfig()
    assert config.upstream.base_url == "https://api.runpod.ai/v2" and config.upstream.api_key == ""
    surface = SurfaceConfig()
    assert (surface.mode, surface.sync_timeout_s, surface.default_model) == ("sync", 120.0, None)
    assert ModelRoute().owned_by == "dryapi"
    assert LimitsConfig().tiers == {} and LimitsConfig().jobs_rpm is None  # no tier listed: unlimited


def test_configs_are_immutable() -> None:
    with pytest.raises(AttributeError):
        Policy().ttl_s = 1  # type: ignore[misc]
