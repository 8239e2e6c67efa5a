"""GET /api/v1/client/models through real HTTP: filtered, paginated, in the clients' shape."""

from __future__ import annotations

from tests.native.conftest import Native


def test_filter_lists_exactly_the_txt2img_models(native: Native) -> None:
    response = native.http.get(f"{native.base}/models", params={"filter[inference_types]": "txt2img"})
    assert response.status_code == 200
    body = response.json()
    assert [m["slug"] for m in body["data"]] == ["Flux1schnell"]
    assert body["data"][0]["info"]["limits"]["max_steps"] == 10
    assert body["meta"]["total"] == 1 and body["links"]["next"] is None


def test_pages(native: Native) -> None:
    first = native.http.get(f"{native.base}/models", params={"per_page": 3}).json()
    assert len(first["data"]) == 3 and first["meta"]["current_page"] == 1 and first["links"]["next"]
    second = native.http.get(first["links"]["next"]).json()
    assert second["meta"]["current_page"] == 2
    assert {m["slug"] for m in first["data"]}.isdisjoint({m["slug"] for m in second["data"]})
    assert "plain-image" not in {m["slug"] for m in first["data"] + second["data"]}


def test_bad_page_is_a_422(native: Native) -> None:
    response = native.http.get(f"{native.base}/models", params={"page": "zero"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "page"


def test_the_openapi_document_describes_every_native_route(native: Native) -> None:
    doc = native.http.get(native.base.replace("/api/v1/client", "/schema/openapi.json")).json()
    from app.tasks.registry import TASKS

    for name, spec in TASKS.items():
        operation = doc["paths"][f"/api/v1/client/{name}"]["post"]
        content = operation["requestBody"]["content"]
        assert {"application/json", "application/x-www-form-urlencoded"} <= set(content)
        properties = content["application/json"]["schema"]["properties"]
        assert "model" in properties and "model" in content["application/json"]["schema"]["required"]
        if spec.files:
            multipart = content["multipart/form-data"]["schema"]["properties"]
            assert all(rule.name in multipart or f"{rule.name}[]" in multipart for rule in spec.files)
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok["properties"]["data"]["properties"]["request_id"]["type"] == "string"
        assert "statusCode" in operation["responses"]["422"]["content"]["application/json"]["schema"]["properties"]
    width = doc["paths"]["/api/v1/client/txt2img"]["post"]["requestBody"]["content"]["application/json"]
    assert width["schema"]["properties"]["width"]["maximum"] == 16384
    assert "/api/v1/client/request-status/{request_id}" in doc["paths"]
    assert "/api/v1/client/models" in doc["paths"]
