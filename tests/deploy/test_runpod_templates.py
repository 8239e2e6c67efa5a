"""deploy/runpod: the endpoint templates parse, and the creation script talks RunPod's REST shape."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from litestar import Request, post
from litestar.exceptions import NotAuthorizedException

from tests.support.servers import serve, stub_app

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("create_endpoints", ROOT / "deploy/runpod/create_endpoints.py")
assert SPEC and SPEC.loader
create_endpoints = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(create_endpoints)


@pytest.mark.parametrize("surface", create_endpoints.SURFACES)
def test_endpoint_body_is_complete(surface: str) -> None:
    spec = json.loads((ROOT / f"deploy/runpod/{surface}.json").read_text())
    endpoint = spec["endpoint"]
    assert endpoint["type"] == "QUEUE" and endpoint["image"].startswith("REGISTRY/")
    assert endpoint["env"]["RUNPOD_LOG_LEVEL"] == "INFO"
    assert endpoint["gpu"]["pools"] and endpoint["gpu"]["count"] >= 1 and endpoint["gpu"]["minCudaVersion"]
    assert endpoint["flashboot"] == "FLASHBOOT" and endpoint["scaling"]["type"] == "QUEUE_DELAY"
    assert isinstance(endpoint["workers"]["idleTimeout"], int) and endpoint["workers"]["max"] >= 1
    assert (ROOT / f"handlers/{create_endpoints.VARIANTS.get(surface, surface)}/Dockerfile").exists()


CREATED: list[dict[str, Any]] = []


@post("/v2/serverless", status_code=201)
async def _create_endpoint(request: Request[Any, Any, Any], data: dict[str, Any]) -> dict[str, str]:
    if request.headers.get("authorization") != "Bearer k":
        raise NotAuthorizedException()
    CREATED.append(data)
    return {"id": f"ep-{len(CREATED)}", "name": data["name"]}


def test_script_creates_one_endpoint_per_surface_on_rest_v2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "k")
    CREATED.clear()
    with serve(stub_app(_create_endpoint)) as fake_runpod:
        code = create_endpoints.main(
            ["embeddings", "chat", "--image-prefix", "ghcr.io/acme/", "--api-base", f"{fake_runpod.url}/v2"]
        )
    assert code == 0
    assert [c["image"] for c in CREATED] == ["ghcr.io/acme/dryapi-embeddings:0.1.0", "ghcr.io/acme/dryapi-chat:0.1.0"]
    assert all("networkVolumes" not in c and "templateId" not in c for c in CREATED)
    out = capsys.readouterr().out
    assert "export RUNPOD_EMBEDDINGS_ENDPOINT_ID=ep-1" in out and "export RUNPOD_CHAT_ENDPOINT_ID=ep-2" in out


def test_script_defaults_to_rest_v2_and_sets_the_volume() -> None:
    assert create_endpoints.DEFAULT_API_BASE == "https://api.runpod.io/v2"
    endpoint = create_endpoints.body("transcribe", "", "1.2.3", "vol-1")
    assert endpoint["networkVolumes"] == ["vol-1"] and endpoint["image"] == "dryapi-transcribe:1.2.3"
