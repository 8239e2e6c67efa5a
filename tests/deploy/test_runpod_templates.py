"""deploy/runpod: the endpoint templates parse, and the creation script talks RunPod's REST shape."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from litestar import post

from tests.support.servers import serve, stub_app

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("create_endpoints", ROOT / "deploy/runpod/create_endpoints.py")
assert SPEC and SPEC.loader
create_endpoints = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(create_endpoints)


@pytest.mark.parametrize("surface", ["chat", "images", "transcribe", "embeddings"])
def test_template_is_complete(surface: str) -> None:
    spec = json.loads((ROOT / f"deploy/runpod/{surface}.json").read_text())
    template, endpoint = spec["template"], spec["endpoint"]
    assert template["isServerless"] is True and template["imageName"].startswith("REGISTRY/")
    assert template["env"]["RUNPOD_LOG_LEVEL"] == "INFO"
    assert endpoint["gpuTypeIds"] and endpoint["flashboot"] is True
    assert isinstance(endpoint["idleTimeout"], int) and endpoint["workersMax"] >= 1
    assert (ROOT / f"handlers/{surface}/Dockerfile").exists()


CREATED: list[dict[str, Any]] = []


@post("/v1/templates", status_code=200)
async def _template(data: dict[str, Any]) -> dict[str, str]:
    CREATED.append({"template": data})
    return {"id": f"tpl-{len(CREATED)}"}


@post("/v1/endpoints", status_code=200)
async def _endpoint(data: dict[str, Any]) -> dict[str, str]:
    CREATED.append({"endpoint": data})
    return {"id": f"ep-{len(CREATED)}"}


def test_script_creates_template_then_endpoint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "k")
    with serve(stub_app(_template, _endpoint)) as fake_runpod:
        code = create_endpoints.main(
            ["embeddings", "--image-prefix", "ghcr.io/acme/", "--api-base", f"{fake_runpod.url}/v1"]
        )
    assert code == 0
    assert CREATED[0]["template"]["imageName"] == "ghcr.io/acme/dryapi-embeddings:0.1.0"
    assert CREATED[1]["endpoint"]["templateId"] == "tpl-1"
    assert "networkVolumeId" not in CREATED[1]["endpoint"]
    assert "export RUNPOD_EMBEDDINGS_ENDPOINT_ID=ep-2" in capsys.readouterr().out
