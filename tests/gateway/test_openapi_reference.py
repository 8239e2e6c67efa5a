"""The OpenAPI document as the reference lays it out: /openapi.json, bearer security, tags, path names."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.gateway.conftest import Gateway

PUBLIC = ("/healthz", "/readyz", "/metrics", "/v1/files/", "/v1/results/", "/v1/webhooks/runpod/")
METHODS = ("get", "post", "put", "delete", "patch")


@pytest.fixture(scope="module")
def doc(gateway: Gateway) -> dict[str, Any]:
    response = httpx.get(f"{gateway.url}/openapi.json")  # no key needed, like /schema
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def test_served_at_both_paths(gateway: Gateway, doc: dict[str, Any]) -> None:
    assert httpx.get(f"{gateway.url}/schema/openapi.json").json() == doc


def test_bearer_scheme_on_every_authenticated_operation(doc: dict[str, Any]) -> None:
    scheme = doc["components"]["securitySchemes"]["BearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            security = item[method].get("security")
            if path.startswith(PUBLIC):
                assert not security, path
            else:
                assert security == [{"BearerAuth": []}], (method, path)


def test_top_level_tags_with_descriptions(doc: dict[str, Any]) -> None:
    tags = {tag["name"]: tag.get("description") for tag in doc["tags"]}
    for name in ("OpenAI-Compatible", "Jobs", "RunPod Jobs", "Webhooks"):
        assert tags.get(name), name
    used = {tag for item in doc["paths"].values() for m in METHODS if m in item for tag in item[m].get("tags", [])}
    assert used <= set(tags)
    assert doc["paths"]["/v1/chat/completions"]["post"]["tags"] == ["OpenAI-Compatible"]
    assert doc["paths"]["/v1/runpod/{endpoint_id}/run"]["post"]["tags"] == ["RunPod Jobs"]


def test_job_routes_as_the_reference_names_them(doc: dict[str, Any]) -> None:
    for path in ("/v1/jobs/{surface}/{jobId}", "/v1/jobs/{surface}/{jobId}/download", "/v1/jobs/{surface}/{jobId}/ws"):
        operation = doc["paths"][path]["get"]
        assert operation["tags"] == ["Jobs"]
        params = {p["name"]: p for p in operation["parameters"]}
        assert {"surface", "jobId"} <= set(params)
        surface = params["surface"]["schema"]
        assert sorted(surface["enum"]) == ["chat", "embeddings", "images", "music", "speech", "transcribe", "video"]
    endpoint = {p["name"] for p in doc["paths"]["/v1/jobs/{surface}/{jobId}"]["get"]["parameters"]}
    assert "endpointId" in endpoint


def test_websocket_route_documents_101_and_426(doc: dict[str, Any]) -> None:
    responses = doc["paths"]["/v1/jobs/{surface}/{jobId}/ws"]["get"]["responses"]
    assert {"101", "426"} <= set(responses)
