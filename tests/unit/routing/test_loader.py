"""app/routing/loader.py: YAML, ``${VAR}`` interpolation, and every problem named with its YAML path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.routing import RoutingError, parse_routing
from app.routing.loader import load_routing
from app.routing.schema import RoutingConfig, TierLimits, WindowLimits

BASE = """
upstream: {base_url: "${BASE:-https://api.runpod.ai/v2}", api_key: "${KEY:-}"}
surfaces:
  chat:
    default_model: m1
    models:
      m1: {endpoint_id: "${EP}", upstream_model: org/m1, aliases: [one], local_endpoint: loc}
      m2: {endpoint_id: ""}
local:
  endpoints:
    loc: {handler: "pkg.mod:fn"}
"""


def test_interpolation_uses_env_and_defaults() -> None:
    loaded = parse_routing(BASE, env={"EP": "abc", "KEY": "k"})
    config = loaded.config
    assert config.upstream.base_url == "https://api.runpod.ai/v2"
    assert config.upstream.api_key == "k"
    assert config.surfaces["chat"].models["m1"].endpoint_id == "abc"
    assert len(loaded.sha256) == 64


def test_empty_env_value_falls_back_to_default() -> None:
    config = parse_routing(BASE, env={"EP": "abc", "BASE": ""}).config
    assert config.upstream.base_url == "https://api.runpod.ai/v2"


def test_unset_variable_without_default_is_an_error_with_its_path() -> None:
    with pytest.raises(RoutingError) as caught:
        parse_routing(BASE, "r.yaml", env={})
    assert caught.value.problems == [
        ("surfaces.chat.models.m1.endpoint_id", "environment variable EP is not set and has no default")
    ]
    assert "r.yaml: surfaces.chat.models.m1.endpoint_id" in str(caught.value)


def test_every_problem_is_reported() -> None:
    text = """
surfaces:
  chat:
    default_model: ghost
    mode: fast
    models:
      a: {endpoint_id: e1, aliases: [x]}
      b: {endpoint_id: e, aliases: [x], local_endpoint: nowhere, pass_through: [k]}
      c: {endpoint_id: 1}
  hologram: {}
upstream: {base_url: "ftp://nope"}
extra: 1
"""
    with pytest.raises(RoutingError) as caught:
        parse_routing(text, env={})
    paths = {path for path, _ in caught.value.problems}
    assert {
        "extra",
        "upstream.base_url",
        "surfaces.chat.mode",
        "surfaces.chat.models.c.endpoint_id",
        "surfaces.chat.default_model",
        "surfaces.chat.models.b",
        "surfaces.chat.models.b.local_endpoint",
        "surfaces.chat.models.b.pass_through",
        "surfaces.hologram",
    } <= paths


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(RoutingError) as caught:
        parse_routing("surfaces: [\n", env={})
    assert caught.value.problems[0][0].startswith("line ")


def _problems(text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(RoutingError) as caught:
        parse_routing(text, "r.yaml", env=env or {})
    return dict(caught.value.problems)


def test_a_variable_set_to_empty_is_used_when_there_is_no_default() -> None:
    config = parse_routing(BASE, env={"EP": ""}).config
    assert config.surfaces["chat"].models["m1"].endpoint_id == ""


def test_several_variables_in_one_value_and_inside_lists() -> None:
    text = """
surfaces:
  chat:
    models:
      m: {endpoint_id: "${A}-${B:-b}", aliases: ["${ALIAS}", fixed]}
"""
    model = parse_routing(text, env={"A": "a", "ALIAS": "al"}).config.surfaces["chat"].models["m"]
    assert model.endpoint_id == "a-b"
    assert model.aliases == ["al", "fixed"]
    assert _problems(text, {"A": "a"}) == {
        "surfaces.chat.models.m.aliases.0": "environment variable ALIAS is not set and has no default"
    }


def test_text_that_only_looks_like_a_variable_is_kept() -> None:
    text = 'surfaces: {chat: {models: {m: {endpoint_id: "$EP {x} ${1BAD}"}}}}'
    assert parse_routing(text, env={}).config.surfaces["chat"].models["m"].endpoint_id == "$EP {x} ${1BAD}"


def test_an_empty_document_is_a_config_with_nothing_routed() -> None:
    loaded = parse_routing("", env={})
    assert loaded.config == RoutingConfig()
    assert loaded.sha256 == hashlib.sha256(b"").hexdigest()


def test_a_document_that_is_not_a_mapping_is_one_problem_at_the_root() -> None:
    with pytest.raises(RoutingError) as caught:
        parse_routing("- a\n- b\n", "r.yaml", env={})
    assert caught.value.problems == [("", "the document must be a mapping")]
    assert str(caught.value) == "r.yaml: <root>: the document must be a mapping"


def test_sections_of_the_wrong_type_are_named() -> None:
    assert _problems("surfaces: [chat]\nlocal: 3\nlimits: x\n") == {
        "surfaces": "must be a mapping",
        "local": "must be a mapping",
        "limits": "must be a mapping",
    }
    assert _problems("surfaces: {chat: [a]}") == {"surfaces.chat": "must be a mapping"}
    assert _problems("surfaces: {chat: {models: [a]}}") == {"surfaces.chat.models": "must be a mapping"}


def test_wrong_types_and_bounds_name_the_field() -> None:
    problems = _problems("""
upstream: {request_timeout_s: 0}
surfaces:
  chat:
    sync_timeout_s: -1
    models: {m: {endpoint_id: e, aliases: x}}
  images:
    policy: {execution_timeout_s: 4}
""")
    assert set(problems) == {
        "upstream.request_timeout_s",
        "surfaces.chat.sync_timeout_s",
        "surfaces.images.policy.execution_timeout_s",
        "surfaces.chat.models.m.aliases",
    }
    assert "> 0" in problems["upstream.request_timeout_s"]
    assert ">= 5" in problems["surfaces.images.policy.execution_timeout_s"]
    assert "array" in problems["surfaces.chat.models.m.aliases"]


def test_local_endpoints_are_checked() -> None:
    problems = _problems("""
local:
  extra: 1
  endpoints:
    a: {handler: "no_colon"}
    b: {concurrency: 2}
    c: {handler: "m:f", concurrency: 0}
""")
    assert problems == {
        "local.extra": "unknown key",
        "local.endpoints.a.handler": "must be 'module:function'",
        "local.endpoints.b.handler": "required key is missing",
        "local.endpoints.c.concurrency": problems["local.endpoints.c.concurrency"],
    }
    assert ">= 1" in problems["local.endpoints.c.concurrency"]


def test_a_model_base_url_must_be_http() -> None:
    problems = _problems('surfaces: {chat: {models: {m: {endpoint_id: e, base_url: "ws://x"}}}}')
    assert problems == {"surfaces.chat.models.m.base_url": "must be an http(s) URL, got 'ws://x'"}


def test_an_alias_may_not_reuse_another_models_slug() -> None:
    problems = _problems("surfaces: {chat: {models: {a: {endpoint_id: e}, b: {endpoint_id: e, aliases: [a]}}}}")
    assert problems == {"surfaces.chat.models.b": "name 'a' is already used by model 'a'"}


def test_pass_through_is_allowed_on_images_and_transcribe_only() -> None:
    text = "surfaces: {%s: {models: {m: {endpoint_id: e, pass_through: [output_format]}}}}"
    for surface in ("images", "transcribe"):
        route = parse_routing(text % surface, env={}).config.surfaces[surface].models["m"]  # type: ignore[index]
        assert route.pass_through == ["output_format"]
    for surface in ("chat", "embeddings"):
        assert set(_problems(text % surface)) == {f"surfaces.{surface}.models.m.pass_through"}


def test_limits_tier_by_tier_and_surface_by_surface() -> None:
    limits = parse_routing("""
limits:
  jobs_rpm: 30
  tiers:
    free: {rpm: 10, rpd: 100, surfaces: {images: {rpm: 2}}}
    bare:
""", env={}).config.limits
    assert limits.jobs_rpm == 30
    assert limits.tiers["free"] == TierLimits(rpm=10, rpd=100, surfaces={"images": WindowLimits(rpm=2)})
    assert limits.tiers["bare"] == TierLimits()


def test_every_bad_limit_is_named() -> None:
    # One problem per mapping (msgspec stops at a mapping's first error), so one per line here.
    assert set(_problems("limits: {jobs_rpm: 0}")) == {"limits.jobs_rpm"}
    problems = _problems("""
limits:
  tiers:
    a: {rpm: 0, surfaces: {hologram: {rpm: 1}, chat: {rph: 5}}}
    b: [1]
    c: {surfaces: [chat]}
  tiers_typo: 1
""")
    assert set(problems) == {
        "limits.tiers_typo",
        "limits.tiers.a.rpm",
        "limits.tiers.a.surfaces.hologram",
        "limits.tiers.a.surfaces.chat.rph",
        "limits.tiers.b",
        "limits.tiers.c.surfaces",
    }
    assert problems["limits.tiers_typo"] == "unknown key"
    assert problems["limits.tiers.a.surfaces.chat.rph"] == "unknown key"


def test_load_routing_reads_the_file_and_names_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("surfaces: {chat: {models: {m: {endpoint_id: e}}}}\n", encoding="utf-8")
    loaded = load_routing(path, env={})
    assert loaded.source == str(path)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.config.surfaces["chat"].models["m"].endpoint_id == "e"
    with pytest.raises(RoutingError) as caught:
        load_routing(tmp_path / "absent.yaml", env={})
    [(where, message)] = caught.value.problems
    assert where == "" and message.startswith("cannot read file")
