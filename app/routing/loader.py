"""Load routing.yaml: YAML, then ``${VAR}`` / ``${VAR:-default}`` interpolation, then the schema.

Every problem is collected with its file and YAML path, so ``routing check`` names them all
at once instead of one per run.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import yaml

from app.routing.schema import (
    INFERENCE_TYPES,
    LIMITED_ROUTES,
    SURFACES,
    BillingConfig,
    HealthConfig,
    LimitsConfig,
    LocalConfig,
    LocalEndpoint,
    ModelRoute,
    RoutingConfig,
    SurfaceConfig,
    TierLimits,
    Upstream,
    WindowLimits,
)

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class RoutingError(ValueError):
    """routing.yaml is invalid; ``problems`` lists ``(yaml_path, message)``."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {path or '<root>'}: {msg}" for path, msg in problems))


class LoadedRouting(msgspec.Struct, frozen=True):
    config: RoutingConfig
    source: str
    sha256: str


def _interpolate(node: Any, path: str, env: Mapping[str, str], problems: list[tuple[str, str]]) -> Any:
    if isinstance(node, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group("name"), match.group("default")
            value = env.get(name)
            if value is not None and (value != "" or default is None):
                return value
            if default is not None:
                return default
            problems.append((path, f"environment variable {name} is not set and has no default"))
            return ""

        return _VAR.sub(substitute, node)
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k), env, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{path}.{i}", env, problems) for i, v in enumerate(node)]
    return node


def _join(base: str, sub: str) -> str:
    sub = re.sub(r"\[(\d+)\]", r".\1", sub).lstrip(".")
    return f"{base}.{sub}" if base and sub else base or sub


def _convert(raw: Any, schema: type[Any], path: str, problems: list[tuple[str, str]]) -> Any:
    try:
        return msgspec.convert(raw, schema)
    except msgspec.ValidationError as exc:
        text = str(exc)
        # msgspec names a bad mapping key as "at `key` in `$.path`".
        match = re.search(r" - at `(?:key` in `)?\$(?P<at>[^`]*)`$", text)
        message = text[: match.start()] if match else text
        where = _join(path, match.group("at")) if match else path
        field = re.search(r"(?:unknown|missing required) field `([^`]+)`", message)
        if field:
            where = _join(where, field.group(1))
            message = "unknown key" if "unknown" in message else "required key is missing"
        problems.append((where, message))
        return None


def _check_url(url: str, path: str, problems: list[tuple[str, str]]) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append((path, f"must be an http(s) URL, got {url!r}"))


def _validate(raw: Any, problems: list[tuple[str, str]]) -> RoutingConfig | None:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(("", "the document must be a mapping"))
        return None
    for key in raw:
        if key not in RoutingConfig.__struct_fields__:
            problems.append((str(key), "unknown key"))
    upstream = _convert(raw.get("upstream") or {}, Upstream, "upstream", problems)
    if upstream is not None:
        _check_url(upstream.base_url, "upstream.base_url", problems)
    local = _validate_local(raw.get("local") or {}, problems)
    local_names = set(local.endpoints) if local else set()
    surfaces: dict[str, SurfaceConfig] = {}
    raw_surfaces = raw.get("surfaces") or {}
    if not isinstance(raw_surfaces, dict):
        problems.append(("surfaces", "must be a mapping"))
        raw_surfaces = {}
    for name, raw_surface in raw_surfaces.items():
        path = f"surfaces.{name}"
        if name not in SURFACES:
            problems.append((path, f"unknown surface; expected one of {', '.join(SURFACES)}"))
            continue
        surface = _validate_surface(str(name), raw_surface, path, local_names, problems)
        if surface is not None:
            surfaces[str(name)] = surface
    limits = _validate_limits(raw.get("limits") or {}, problems)
    billing = _convert(raw.get("billing") or {}, BillingConfig, "billing", problems)
    health = _convert(raw.get("health") or {}, HealthConfig, "health", problems)
    # A hold is reclaimed as stale only once its /run has surely failed or been recorded, and
    # once a /v1 request answered inline (it holds for its whole wait) has surely ended.
    longest = max([(upstream or Upstream()).request_timeout_s, *(s.sync_timeout_s for s in surfaces.values())])
    if billing is not None and billing.stale_hold_s <= longest:
        problems.append(("billing.stale_hold_s",
                         f"must be longer than upstream.request_timeout_s and every surface's sync_timeout_s "
                         f"({longest:g})"))
    if problems:
        return None
    return RoutingConfig(
        upstream=upstream or Upstream(),
        surfaces=surfaces,  # type: ignore[arg-type]
        local=local or LocalConfig(),
        limits=limits or LimitsConfig(),
        billing=billing or BillingConfig(),
        health=health or HealthConfig(),
    )


def _validate_limits(raw: Any, problems: list[tuple[str, str]]) -> LimitsConfig | None:
    """``limits:`` tier by tier and surface by surface, so every bad entry is named."""
    if not isinstance(raw, dict):
        problems.append(("limits", "must be a mapping"))
        return None
    shell = _convert({k: v for k, v in raw.items() if k != "tiers"}, LimitsConfig, "limits", problems)
    groups = shell.groups if shell is not None else {}
    for group, members in groups.items():
        if group in LIMITED_ROUTES:
            problems.append((f"limits.groups.{group}", "a group cannot be named like a route"))
        for member in members:
            if member not in LIMITED_ROUTES:
                problems.append((f"limits.groups.{group}", f"unknown route {member!r}"))
    tiers_raw = raw.get("tiers") or {}
    if not isinstance(tiers_raw, dict):
        problems.append(("limits.tiers", "must be a mapping"))
        return None
    tiers: dict[str, TierLimits] = {}
    for name, spec in tiers_raw.items():
        path = f"limits.tiers.{name}"
        spec = spec or {}
        if not isinstance(spec, dict):
            problems.append((path, "must be a mapping"))
            continue
        own = {k: v for k, v in spec.items() if k not in ("surfaces", "tasks")}
        windows = _convert(own, TierLimits, path, problems)
        tasks = _convert(spec.get("tasks") or {}, dict[str, WindowLimits], f"{path}.tasks", problems) or {}
        for route in tasks:
            if route not in LIMITED_ROUTES and route not in groups:
                problems.append((f"{path}.tasks.{route}", "neither a native route nor a group of limits.groups"))
        surfaces_raw = spec.get("surfaces") or {}
        if not isinstance(surfaces_raw, dict):
            problems.append((f"{path}.surfaces", "must be a mapping"))
            continue
        surfaces: dict[str, WindowLimits] = {}
        for surface, limits in surfaces_raw.items():
            spath = f"{path}.surfaces.{surface}"
            if surface not in SURFACES:
                problems.append((spath, f"unknown surface; expected one of {', '.join(SURFACES)}"))
                continue
            window = _convert(limits or {}, WindowLimits, spath, problems)
            if window is not None:
                surfaces[str(surface)] = window
        if windows is not None:
            tiers[str(name)] = TierLimits(
                rpm=windows.rpm, rpd=windows.rpd, surfaces=surfaces, tasks=tasks  # type: ignore[arg-type]
            )
    if shell is None:
        return None
    return LimitsConfig(jobs_rpm=shell.jobs_rpm, groups=shell.groups, tiers=tiers)


def _validate_local(raw: Any, problems: list[tuple[str, str]]) -> LocalConfig | None:
    if not isinstance(raw, dict):
        problems.append(("local", "must be a mapping"))
        return None
    for key in raw:
        if key != "endpoints":
            problems.append((f"local.{key}", "unknown key"))
    endpoints_raw = raw.get("endpoints") or {}
    if not isinstance(endpoints_raw, dict):
        problems.append(("local.endpoints", "must be a mapping"))
        return None
    endpoints: dict[str, LocalEndpoint] = {}
    for name, spec in endpoints_raw.items():
        path = f"local.endpoints.{name}"
        endpoint = _convert(spec or {}, LocalEndpoint, path, problems)
        if endpoint is None:
            continue
        if ":" not in endpoint.handler:
            problems.append((f"{path}.handler", "must be 'module:function'"))
        endpoints[str(name)] = endpoint
    return LocalConfig(endpoints=endpoints)


def _validate_surface(
    name: str, raw: Any, path: str, local_names: set[str], problems: list[tuple[str, str]]
) -> SurfaceConfig | None:
    if not isinstance(raw, dict):
        problems.append((path, "must be a mapping"))
        return None
    models_raw = raw.get("models") or {}
    shell = _convert({k: v for k, v in raw.items() if k != "models"}, SurfaceConfig, path, problems)
    if not isinstance(models_raw, dict):
        problems.append((f"{path}.models", "must be a mapping"))
        return None
    models: dict[str, ModelRoute] = {}
    seen: dict[str, str] = {}
    for slug, raw_model in models_raw.items():
        mpath = f"{path}.models.{slug}"
        route = _convert(raw_model or {}, ModelRoute, mpath, problems)
        if route is None:
            continue
        models[str(slug)] = route
        for public in (str(slug), *route.aliases):
            if public in seen:
                problems.append((mpath, f"name {public!r} is already used by model {seen[public]!r}"))
            seen[public] = str(slug)
        if route.local_endpoint and route.local_endpoint not in local_names:
            problems.append((f"{mpath}.local_endpoint", f"no local.endpoints entry named {route.local_endpoint!r}"))
        if route.base_url:
            _check_url(route.base_url, f"{mpath}.base_url", problems)
        if route.endpoint_id and route.endpoints:
            problems.append((f"{mpath}.endpoints", "give endpoint_id or endpoints, not both"))
        ids = [ref.id for ref in route.endpoints]
        providers = [ref.provider for ref in route.endpoints]
        if len(set(ids)) != len(ids) or len(set(providers)) != len(providers):
            problems.append((f"{mpath}.endpoints", "endpoint ids and names must be unique"))
        if route.pass_through and name not in ("images", "transcribe"):
            problems.append((f"{mpath}.pass_through", "only images and transcribe routes filter handler keys"))
        _check_catalogue_entry(name, route, mpath, problems)
    default = raw.get("default_model")
    if default is not None and default not in seen:
        problems.append((f"{path}.default_model", f"{default!r} is not a model of this surface"))
    if shell is None:
        return None
    return SurfaceConfig(
        default_model=shell.default_model,
        mode=shell.mode,
        sync_timeout_s=shell.sync_timeout_s,
        policy=shell.policy,
        models=models,
    )


def _check_catalogue_entry(surface: str, route: ModelRoute, path: str, problems: list[tuple[str, str]]) -> None:
    """What the schema alone cannot say about a model's native catalogue entry."""
    served = INFERENCE_TYPES[surface]  # type: ignore[index]
    for kind in route.inference_types:
        if kind not in served:
            problems.append((f"{path}.inference_types", f"{kind!r} is not a task of {surface}; expected {served}"))
    limits = route.info.limits
    for key, value in limits.items():
        if key.startswith(("min_", "max_")) and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.append((f"{path}.info.limits.{key}", "must be a number"))
    for key, low in limits.items():
        high = limits.get("max_" + key[4:]) if key.startswith("min_") else None
        if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
            problems.append((f"{path}.info.limits.{key}", f"is above max_{key[4:]}"))
    voices = {voice.slug for language in route.languages for voice in language.voices}
    default_voice = route.info.defaults.get("voice")
    if voices and default_voice is not None and default_voice not in voices:
        problems.append((f"{path}.info.defaults.voice", f"{default_voice!r} is not one of the model's voices"))


def parse_routing(text: str, source: str = "routing.yaml", env: Mapping[str, str] | None = None) -> LoadedRouting:
    """Parse and validate routing YAML text; raise ``RoutingError`` listing every problem."""
    env = os.environ if env is None else env
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RoutingError(source, [(where, f"invalid YAML: {getattr(exc, 'problem', exc)}")]) from None
    problems: list[tuple[str, str]] = []
    interpolated = _interpolate(raw, "", env, problems)
    config = _validate(interpolated, problems)
    if config is None or problems:
        raise RoutingError(source, problems)
    return LoadedRouting(config, source, hashlib.sha256(text.encode()).hexdigest())


def load_routing(path: str | Path, env: Mapping[str, str] | None = None) -> LoadedRouting:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutingError(source, [("", f"cannot read file: {exc.strerror or exc}")]) from None
    return parse_routing(text, source, env)
