"""app/routing: the native catalogue keys of a model (inference types, info, voices, pricing, billing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.routing import RoutingError, parse_routing
from app.routing.loader import load_routing
from app.routing.schema import INFERENCE_TYPES

ROOT = Path(__file__).resolve().parents[2]

# Every slug the seeds list per task (reference §4.1.5), with the task's inference type.
SEED_SLUGS = {
    "txt2img": ["Flux1schnell", "ZImageTurbo_INT8", "Flux_2_Klein_4B_BF16"],
    "img2img": ["Flux_2_Klein_4B_BF16", "QwenImageEdit_Plus_NF4"],
    "txt2video": ["Ltxv_13B_0_9_8_Distilled_FP8", "Ltx2_19B_Dist_FP8", "Ltx2_3_19B_Dist_INT8"],
    "img2video": ["Ltxv_13B_0_9_8_Distilled_FP8", "Ltx2_19B_Dist_FP8", "Ltx2_3_19B_Dist_INT8"],
    "aud2video": ["Ltx2_3_19B_Dist_INT8"],
    "txt2audio": ["Kokoro", "Chatterbox", "Qwen3_TTS"],
    "txt2music": ["ACE-Step-v1.5-turbo"],
    "txt2embedding": ["Bge_M3_INT8"],
    "img2txt": ["Nanonets_Ocr_S_F16"],
    "video2text": ["WhisperLargeV3"],
    "audio2text": ["WhisperLargeV3"],
    "video_file2text": ["WhisperLargeV3"],
    "audio_file2text": ["WhisperLargeV3"],
    "img-rmbg": ["Ben2"],
    "img-upscale": ["RealESRGAN_x4plus"],
}


def _model(text: str) -> str:
    return f"""
surfaces:
  images:
    models:
      m:
        endpoint_id: e
{text}
"""


def test_shipped_routing_lists_every_seed_slug_for_its_task() -> None:
    config = load_routing(ROOT / "routing.yaml", env={}).config
    serving: dict[str, set[str]] = {}
    for surface in config.surfaces.values():
        for slug, route in surface.models.items():
            for kind in route.inference_types:
                serving.setdefault(kind, set()).add(slug)
            assert route.pricing_rules, f"{slug} has no pricing rule"
    for kind, slugs in SEED_SLUGS.items():
        assert set(slugs) <= serving.get(kind, set()), kind


def test_shipped_aliases_cover_the_second_spellings() -> None:
    config = load_routing(ROOT / "routing.yaml", env={}).config
    assert "RealESRGAN_x4" in config.surfaces["images"].models["RealESRGAN_x4plus"].aliases
    assert "Bge_M3_FP16" in config.surfaces["embeddings"].models["Bge_M3_INT8"].aliases
    assert not config.billing.enabled
    assert config.billing.initial_balance_usd == 5.0
    assert config.billing.stale_hold_s == 1800


def test_inference_type_of_another_surface_is_refused() -> None:
    with pytest.raises(RoutingError) as caught:
        parse_routing(_model("        inference_types: [txt2img, txt2audio]"), env={})
    ((path, message),) = caught.value.problems
    assert path == "surfaces.images.models.m.inference_types"
    assert "txt2audio" in message


def test_limits_must_be_numbers_and_ordered() -> None:
    text = _model("        info: {limits: {min_width: 512, max_width: 256, max_steps: lots}}")
    with pytest.raises(RoutingError) as caught:
        parse_routing(text, env={})
    paths = {path for path, _ in caught.value.problems}
    assert paths == {"surfaces.images.models.m.info.limits.min_width", "surfaces.images.models.m.info.limits.max_steps"}


def test_default_voice_must_be_one_of_the_voices() -> None:
    text = """
surfaces:
  speech:
    models:
      tts:
        endpoint_id: e
        inference_types: [txt2audio]
        info: {defaults: {voice: nobody}}
        languages: [{slug: en-us, voices: [{slug: af_sky, gender: female}]}]
"""
    with pytest.raises(RoutingError) as caught:
        parse_routing(text, env={})
    assert caught.value.problems[0][0] == "surfaces.speech.models.tts.info.defaults.voice"


@pytest.mark.parametrize(
    ("rule", "where"),
    [
        ("{usd: -1}", "usd"),
        ("{usd: 1, per: {parsecs: 3}}", "per"),
        ("{usd: 1, per: {pixels: 0}}", "per"),
        ("{usd: 1, minimum_usd: -0.1}", "minimum_usd"),
        ("{usd: 1, surcharge: 2}", "surcharge"),
    ],
)
def test_bad_pricing_rules_are_named(rule: str, where: str) -> None:
    with pytest.raises(RoutingError) as caught:
        parse_routing(_model(f"        pricing: {rule}"), env={})
    ((path, _message),) = caught.value.problems
    assert path.startswith("surfaces.images.models.m.pricing"), path
    assert where in path or where in _message


def test_unknown_billing_key_is_refused() -> None:
    with pytest.raises(RoutingError) as caught:
        parse_routing("billing: {enabled: true, free_money: 1}", env={})
    assert caught.value.problems == [("billing.free_money", "unknown key")]


def test_a_stale_hold_grace_within_the_upstream_timeout_is_refused() -> None:
    """A hold reclaimed while its /run may still answer would make that job free."""
    with pytest.raises(RoutingError) as caught:
        parse_routing("billing: {enabled: true, stale_hold_s: 20}", env={})
    assert caught.value.problems == [
        ("billing.stale_hold_s",
         "must be longer than upstream.request_timeout_s and every surface's sync_timeout_s (30)"),
    ]
    text = "upstream: {request_timeout_s: 5}\nbilling: {enabled: true, stale_hold_s: 20}"
    assert parse_routing(text, env={}).config.billing.stale_hold_s == 20
    # A /v1 request answered inline holds for as long as its surface waits.
    waiting = text + "\nsurfaces: {chat: {sync_timeout_s: 45, models: {m: {endpoint_id: e}}}}"
    with pytest.raises(RoutingError) as caught:
        parse_routing(waiting, env={})
    assert caught.value.problems[0][0] == "billing.stale_hold_s"
    assert "(45)" in caught.value.problems[0][1]


def test_every_surface_has_a_task_vocabulary() -> None:
    from app.routing.schema import SURFACES

    assert set(INFERENCE_TYPES) == set(SURFACES)
