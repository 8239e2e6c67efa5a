"""deploy/: compose, Kubernetes manifests and Dockerfiles agree with each other and with the code."""

from __future__ import annotations

import ast
import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.routing.loader import parse_routing

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
DRAIN_S_DEFAULT = 30  # DRYAPI_DRAIN_S's default in app/cli.py
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def _yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@functools.cache
def _env_names_read_by(*packages: str) -> frozenset[str]:
    """Every UPPER_SNAKE string literal in a package's code: the names it reads from os.environ."""
    names: set[str] = set()
    for package in packages:
        for source in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and _ENV_NAME.match(node.value):
                    names.add(node.value)
    return frozenset(names)


def _dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\s*\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, args = line.strip().partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


def _one(instructions: list[tuple[str, str]], name: str) -> str:
    found = [args for instruction, args in instructions if instruction == name]
    assert found, f"no {name}"
    return found[-1]


# compose ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


def test_compose_services_healthchecks_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"gateway", "redis", "emulator"} <= set(services)
    for name, service in services.items():
        check = service["healthcheck"]["test"]
        assert check[0] in ("CMD", "CMD-SHELL") and len(check) > 1, name
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert spec["condition"] in ("service_started", "service_healthy", "service_completed_successfully")
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file(), name
    gateway = services["gateway"]
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "emulator" in gateway["depends_on"]
    assert gateway["ports"] == ["127.0.0.1:8000:8000"]  # dev secrets: never published beyond loopback
    assert int(gateway["stop_grace_period"].rstrip("s")) > int(gateway["environment"]["DRYAPI_DRAIN_S"])


def test_compose_gateway_reaches_the_emulator_and_back(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gateway, emulator = services["gateway"]["environment"], services["emulator"]["environment"]
    assert gateway["REDIS_URL"].startswith("redis://redis:6379/")
    assert gateway["RUNPOD_API_BASE"] == "http://emulator:8001/v2"
    assert "8001" in services["emulator"]["expose"]
    assert gateway["RUNPOD_API_KEY"] == emulator["RUNPOD_API_KEY"]  # the emulator checks it like RunPod
    assert gateway["DRYAPI_SIGNING_SECRET"] and gateway["DRYAPI_ADMIN_KEY"]  # required on a 0.0.0.0 bind
    assert "http://gateway:8000}" in gateway["DRYAPI_PUBLIC_URL"]
    assert "gateway:8000" in emulator["MEDIA_FETCH_ALLOWLIST"].split(",")
    # HF_HOME sits on a named volume, so model downloads survive `compose down`.
    mounts = dict(v.split(":")[:2][::-1] for v in services["emulator"]["volumes"])
    assert mounts[emulator["HF_HOME"]] in compose["volumes"]
    # The routing file the gateway reads is deploy/routing.compose.yaml, through a directory mount.
    mount = next(v for v in services["gateway"]["volumes"] if v.startswith("./:"))
    inside = mount.split(":")[1]
    routing = Path(gateway["DRYAPI_ROUTING"]).relative_to(inside)
    assert (DEPLOY / routing) == DEPLOY / "routing.compose.yaml"


def test_compose_environment_names_are_read_by_the_code(compose: dict[str, Any]) -> None:
    services = compose["services"]
    routing_vars = set(_VAR.findall((DEPLOY / "routing.compose.yaml").read_text()))
    unknown = set(services["gateway"]["environment"]) - _env_names_read_by("app") - routing_vars
    assert not unknown, f"gateway env names nothing reads: {unknown}"
    handler_names = _env_names_read_by("app", "handlers") | {"HF_HOME"}  # HF_HOME: huggingface_hub
    unknown = set(services["emulator"]["environment"]) - handler_names
    assert not unknown, f"emulator env names nothing reads: {unknown}"


def test_compose_emulator_mirrors_routing_yaml_local_section(compose: dict[str, Any]) -> None:
    """The emulator image runs routing.yaml's `local:` endpoints with the same models and env."""
    local = yaml.safe_load((ROOT / "routing.yaml").read_text())["local"]["endpoints"]
    environment = compose["services"]["emulator"]["environment"]
    for name, spec in local.items():
        for key, value in spec.get("env", {}).items():
            assert environment.get(key) == value, f"{name}: {key}"
    cmd = _one(_dockerfile(DEPLOY / "emulator.Dockerfile"), "CMD")
    args = yaml.safe_load(cmd)  # exec form is a JSON array
    endpoints = dict(args[i + 1].split("=", 1) for i, arg in enumerate(args) if arg == "--endpoint")
    assert endpoints == {name: spec["handler"] for name, spec in local.items()}
    assert args[args.index("--port") + 1] == "8001"


@pytest.mark.process
def test_compose_routing_file_passes_routing_check() -> None:
    path = DEPLOY / "routing.compose.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "app", "routing", "check", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    config = parse_routing(path.read_text(), str(path), env={}).config
    local = set(yaml.safe_load((ROOT / "routing.yaml").read_text())["local"]["endpoints"])
    used = {m.endpoint_id for s in config.surfaces.values() for m in s.models.values()}
    assert used == local  # every model goes to an endpoint the emulator runs
    assert config.upstream.base_url == "http://emulator:8001/v2"
    assert {"chat", "images", "transcribe", "embeddings", "speech", "music"} == set(config.surfaces)


# Dockerfiles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ROOT / "Dockerfile", DEPLOY / "emulator.Dockerfile"], ids=lambda p: p.name)
def test_dockerfiles_are_non_root_with_a_healthcheck(path: Path) -> None:
    instructions = _dockerfile(path)
    assert instructions[0][0] in ("FROM", "ARG")
    assert _one(instructions, "FROM").startswith("python:3.11")
    user = _one(instructions, "USER")
    assert user not in ("root", "0") and user == "10001"
    assert "CMD" in _one(instructions, "HEALTHCHECK")
    assert yaml.safe_load(_one(instructions, "CMD"))[0] == "dryapi-gateway"


def test_gateway_image_matches_the_manifests(compose: dict[str, Any]) -> None:
    instructions = _dockerfile(ROOT / "Dockerfile")
    assert "/healthz" in _one(instructions, "HEALTHCHECK")
    assert _one(instructions, "EXPOSE") == "8000"
    pod = _deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(_one(instructions, "USER"))
    emulator = _dockerfile(DEPLOY / "emulator.Dockerfile")
    hf_home = re.search(r"HF_HOME=(\S+)", _one(emulator, "ENV"))
    assert hf_home and hf_home.group(1) == compose["services"]["emulator"]["environment"]["HF_HOME"]


# Kubernetes ------------------------------------------------------------------------------------


def _manifests() -> dict[str, list[dict[str, Any]]]:
    return {p.name: _yaml_docs(p) for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml"}


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for docs in _manifests().values() for doc in docs if doc["kind"] == kind]


def _deployment() -> dict[str, Any]:
    (deployment,) = _by_kind("Deployment")
    return deployment


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container["env"]}


def test_kustomization_lists_every_manifest_and_every_doc_is_a_resource() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(_manifests())
    for path in [*K8S.glob("*.yaml"), *(K8S / "optional").glob("*.yaml")]:
        for doc in _yaml_docs(path) if path.name != "kustomization.yaml" else []:
            assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"]["name"], path.name
    (namespace,) = _by_kind("Namespace")
    assert kustomization["namespace"] == namespace["metadata"]["name"]
    # The Secret comes from secrets.env (git-ignored); its template carries every key.
    (generator,) = kustomization["secretGenerator"]
    assert generator["envs"] == ["secrets.env"]
    assert "secrets.env" in (K8S / ".gitignore").read_text().split()
    template = (K8S / "secrets.env.example").read_text().splitlines()
    keys = {line.split("=", 1)[0] for line in template if line and not line.startswith("#")}
    refs = {e["valueFrom"]["secretKeyRef"]["key"]: e["valueFrom"]["secretKeyRef"]["name"]
            for e in _deployment()["spec"]["template"]["spec"]["containers"][0]["env"] if "valueFrom" in e}
    assert set(refs) == keys == {"DRYAPI_SIGNING_SECRET", "DRYAPI_ADMIN_KEY", "RUNPOD_API_KEY", "REDIS_URL"}
    assert set(refs.values()) == {generator["name"]}
    redis_url = next(line for line in template if line.startswith("REDIS_URL="))
    assert redis_url == f"REDIS_URL=redis://{_by_kind('StatefulSet')[0]['spec']['serviceName']}:6379/0"


def test_deployment_probes_shutdown_and_security() -> None:
    spec = _deployment()["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert ports["http"] == 8000 and "replicas" not in spec  # the HPA owns the count
    env = _env(container)
    drain_s = int(env["DRYAPI_DRAIN_S"]["value"])
    assert drain_s == DRAIN_S_DEFAULT
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    delay_s = int(env.get("DRYAPI_SHUTDOWN_DELAY_S", {}).get("value", 0))
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + delay_s + drain_s
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"]["cpu"]  # the HPA's CPU target is a share of it
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["http"]) and annotations["prometheus.io/path"] == "/metrics"
    unknown = set(env) - _env_names_read_by("app") - set(_VAR.findall(_routing_text()))
    assert not unknown, f"env names nothing reads: {unknown}"


def _routing_text() -> str:
    (configmap,) = [c for c in _by_kind("ConfigMap") if "routing.yaml" in c["data"]]
    text: str = configmap["data"]["routing.yaml"]
    return text


def test_routing_configmap_is_mounted_as_a_directory_and_valid() -> None:
    pod = _deployment()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (configmap,) = [c for c in _by_kind("ConfigMap") if "routing.yaml" in c["data"]]
    volume = next(v for v in pod["volumes"] if v.get("configMap", {}).get("name") == configmap["metadata"]["name"])
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    assert "subPath" not in mount  # a subPath mount never sees ConfigMap updates
    assert _env(container)["DRYAPI_ROUTING"]["value"] == f"{mount['mountPath']}/routing.yaml"
    loaded = parse_routing(_routing_text(), "routing-configmap.yaml", env={})
    assert set(loaded.config.surfaces) == {"chat", "images", "transcribe", "embeddings"}
    assert loaded.config.upstream.base_url == "https://api.runpod.ai/v2"
    # `keys create` defaults to tier "default"; a tier not listed would be unlimited.
    assert {"default", "basic", "premium"} <= set(loaded.config.limits.tiers)


def test_service_hpa_and_pdb_select_the_gateway_pods() -> None:
    deployment = _deployment()
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    gateway_services = [s for s in _by_kind("Service") if s["metadata"]["name"] == "dryapi-gateway"]
    (service,) = gateway_services
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    (pdb,) = _by_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (hpa,) = _by_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "dryapi-gateway"}
    assert hpa["spec"]["minReplicas"] >= 2 and pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]


@pytest.mark.process
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (built-in kustomize) not installed")
def test_kustomize_builds(tmp_path: Path) -> None:
    build = tmp_path / "kubernetes"
    shutil.copytree(K8S, build)
    shutil.copy(build / "secrets.env.example", build / "secrets.env")
    result = subprocess.run(["kubectl", "kustomize", str(build)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert secret["metadata"]["name"].startswith("dryapi-gateway-secrets-")  # hashed: a change rolls the pods
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["metadata"]["namespace"] == "dryapi"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert refs == {secret["metadata"]["name"]}
