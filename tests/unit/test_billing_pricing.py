"""app/billing/pricing.py: the shipped routing.yaml reproduces every price the seeds publish."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from app.billing.pricing import QuantityMissing, price_micro_usd, usd
from app.routing.loader import load_routing
from app.routing.schema import ModelRoute, PricingRule, RoutingConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config() -> RoutingConfig:
    return load_routing(ROOT / "routing.yaml", env={}).config


def _price(config: RoutingConfig, surface: str, model: str, **quantities: float) -> float:
    route: ModelRoute = config.surfaces[surface].models[model]  # type: ignore[index]
    return usd(price_micro_usd(route.pricing_rules, quantities))


@pytest.mark.parametrize(
    ("model", "expected"),
    [("Flux1schnell", 0.00136), ("ZImageTurbo_INT8", 0.00405), ("Flux_2_Klein_4B_BF16", 0.00186)],
)
def test_text_to_image_reference_request(config: RoutingConfig, model: str, expected: float) -> None:
    assert _price(config, "images", model, pixels=512 * 512, steps=4, images=1) == expected


def test_image_price_scales_with_pixels_and_steps(config: RoutingConfig) -> None:
    assert _price(config, "images", "Flux1schnell", pixels=1024 * 1024, steps=4, images=1) == 0.00544
    assert _price(config, "images", "Flux1schnell", pixels=512 * 512, steps=8, images=1) == 0.00272
    assert _price(config, "images", "Flux1schnell", pixels=512 * 512, steps=4, images=3) == 0.00408


def test_image_edit_reference(config: RoutingConfig) -> None:
    assert _price(config, "images", "QwenImageEdit_Plus_NF4", pixels=512 * 512, steps=20, images=1) == 0.0132


@pytest.mark.parametrize(("speed", "expected"), [(1.0, 0.77), (2.0, 0.385), (0.5, 1.54)])
def test_speech_per_million_characters_with_speed(config: RoutingConfig, speed: float, expected: float) -> None:
    for model in ("Kokoro", "Chatterbox", "Qwen3_TTS"):
        assert _price(config, "speech", model, characters=1_000_000, speed=speed) == expected


def test_speech_without_speed_is_the_base_rate(config: RoutingConfig) -> None:
    assert _price(config, "speech", "Kokoro", characters=1_000) == 0.00077


def test_video_two_seconds_at_256(config: RoutingConfig) -> None:
    for model in config.surfaces["video"].models:
        assert _price(config, "video", model, seconds=2, pixels=256 * 256) == 0.001737


def test_embeddings_per_thousand_tokens(config: RoutingConfig) -> None:
    assert _price(config, "embeddings", "Bge_M3_INT8", tokens=1000) == 0.000068
    assert _price(config, "embeddings", "Bge_M3_INT8", tokens=10_000) == 0.00068


@pytest.mark.parametrize(("chars", "expected"), [(20, 0.000186), (350, 0.003248), (1500, 0.01392)])
def test_ocr_per_thousand_output_chars(config: RoutingConfig, chars: int, expected: float) -> None:
    assert _price(config, "chat", "Nanonets_Ocr_S_F16", output_chars=chars) == expected


def test_transcription_five_minutes_and_per_hour(config: RoutingConfig) -> None:
    five_minutes = _price(config, "transcribe", "WhisperLargeV3", media_seconds=300)
    assert five_minutes == 0.003613
    one_hour = _price(config, "transcribe", "WhisperLargeV3", media_seconds=3600)
    two_hours = _price(config, "transcribe", "WhisperLargeV3", media_seconds=7200)
    assert round(two_hours - one_hour, 6) == 0.021


def test_rules_add_and_flat_rules_ignore_quantities() -> None:
    rules = msgspec.convert([{"usd": 1.0}, {"usd": 2.0, "per": {"tokens": 10}}], list[PricingRule])
    assert price_micro_usd(rules, {"tokens": 5}) == 2_000_000


def test_minimum_applies_per_rule() -> None:
    rule = PricingRule(usd=1.0, per={"pixels": 1_000_000}, minimum_usd=0.5)
    assert price_micro_usd([rule], {"pixels": 1}) == 500_000


def test_multiplier_scales_the_total() -> None:
    rule = PricingRule(usd=0.002)
    assert price_micro_usd([rule], {}, multiplier=1.5) == 3000


def test_missing_quantity_is_named() -> None:
    with pytest.raises(QuantityMissing) as caught:
        price_micro_usd([PricingRule(usd=1.0, per={"pixels": 4})], {"steps": 1})
    assert caught.value.name == "pixels"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_non_finite_or_negative_quantities_are_refused(bad: float) -> None:
    with pytest.raises(ValueError):
        price_micro_usd([PricingRule(usd=1.0, per={"tokens": 1})], {"tokens": bad})


def test_zero_speed_is_refused() -> None:
    with pytest.raises(ValueError):
        price_micro_usd([PricingRule(usd=1.0, inverse={"speed": 1.0})], {"speed": 0.0})


def test_no_rules_is_free() -> None:
    assert price_micro_usd([], {}) == 0
