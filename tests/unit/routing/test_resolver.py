"""app/routing/resolver.py: a (surface, model) to the endpoint that serves it, or the error to answer."""

from __future__ import annotations

import pytest

from app.errors import InvalidRequest, MissingEndpoint, ModelNotFound, Unavailable
from app.routing import parse_routing, resolve
from app.routing.resolver import find_model
from app.routing.schema import ModelRoute, Policy, SurfaceConfig

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


OWN = """
upstream: {base_url: "https://api.runpod.ai/v2/", api_key: "${KEY:-}"}
surfaces:
  images:
    mode: async
    sync_timeout_s: 7
    policy: {execution_timeout_s: 60, ttl_s: 120, low_priority: true}
    models:
      sd: {endpoint_id: ep-sd, aliases: [sd2]}
      a: {endpoint_id: ep-a, pass_through: [output_format]}
      mine: {endpoint_id: ep-mine, base_url: "http://10.0.0.5:8000/v2/"}
  embeddings: {models: {}}
"""


def test_a_slug_wins_over_another_models_alias() -> None:
    # The loader refuses such a file; a config built in code must still resolve predictably.
    surface = SurfaceConfig(models={"sd": ModelRoute(endpoint_id="x", aliases=["sd2", "a"]), "a": ModelRoute()})
    assert find_model(surface, "a") == ("a", surface.models["a"])
    assert find_model(surface, "sd2") == ("sd", surface.models["sd"])
    assert find_model(surface, "SD") is None  # names are exact


def test_the_route_carries_the_surface_settings() -> None:
    config = parse_routing(OWN, env={"KEY": "k"}).config
    route = resolve(config, "images", "a")
    assert route.upstream_model == "a"  # no upstream_model: the slug
    assert (route.mode, route.sync_timeout_s) == ("async", 7)
    assert route.policy == Policy(execution_timeout_s=60, ttl_s=120, low_priority=True)
    assert route.pass_through == ("output_format",)
    assert route.endpoint_url == "https://api.runpod.ai/v2/ep-a"  # one slash, whatever the base ends with


def test_a_model_on_its_own_base_url_needs_no_runpod_key() -> None:
    config = parse_routing(OWN, env={}).config
    route = resolve(config, "images", "mine")
    assert (route.endpoint_url, route.api_key) == ("http://10.0.0.5:8000/v2/ep-mine", "")
    with pytest.raises(Unavailable) as caught:
        resolve(config, "images", "sd")
    assert caught.value.code == "missing_api_key" and caught.value.retryable is False


def test_a_surface_without_models_or_a_local_endpoint_is_missing() -> None:
    config = parse_routing(OWN, env={}).config
    with pytest.raises(MissingEndpoint):
        resolve(config, "embeddings", "anything")
    with pytest.raises(MissingEndpoint):  # serve --local, and this model has no local endpoint
        resolve(config, "images", "sd", local_upstream="http://127.0.0.1:1/v2")


def test_an_unknown_model_names_the_model_param() -> None:
    config = parse_routing(OWN, env={}).config
    with pytest.raises(ModelNotFound) as caught:
        resolve(config, "images", "dall-e-3")
    assert caught.value.param == "model" and "dall-e-3" in caught.value.message
