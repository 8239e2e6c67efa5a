"""routing.yaml: interpolation, validation messages with YAML paths, resolution."""

from __future__ import annotations

import pytest

from app.errors import InvalidRequest, MissingEndpoint, ModelNotFound, Unavailable
from app.routing import RoutingError, parse_routing, resolve

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


def test_resolve_slug_alias_default_and_errors() -> None:
    config = parse_routing(BASE, env={"EP": "ep1", "KEY": "k"}).config
    route = resolve(config, "chat", "one")
    assert (route.public_model, route.upstream_model, route.endpoint_id) == ("m1", "org/m1", "ep1")
    assert route.endpoint_url == "https://api.runpod.ai/v2/ep1"
    assert resolve(config, "chat", None).public_model == "m1"
    with pytest.raises(ModelNotFound):
        resolve(config, "chat", "zzz")
    with pytest.raises(MissingEndpoint):
        resolve(config, "chat", "m2")
    with pytest.raises(MissingEndpoint):
        resolve(config, "images", None)


def test_missing_api_key_only_matters_for_remote_requests() -> None:
    config = parse_routing(BASE, env={"EP": "ep1"}).config
    with pytest.raises(Unavailable) as caught:
        resolve(config, "chat", "m1")
    assert "RUNPOD_API_KEY" in caught.value.message
    local = resolve(config, "chat", "m1", local_upstream="http://127.0.0.1:1/v2")
    assert local.endpoint_url == "http://127.0.0.1:1/v2/loc"


def test_no_default_model_asks_for_one() -> None:
    config = parse_routing("surfaces: {chat: {models: {a: {endpoint_id: e}}}}", env={}).config
    with pytest.raises(InvalidRequest) as caught:
        resolve(config, "chat", None)
    assert caught.value.param == "model"
