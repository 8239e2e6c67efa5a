"""Embeddings through the openai SDK: floats, the SDK's default base64, token arrays, errors."""

from __future__ import annotations

import base64
import math
from array import array

import httpx
import openai
import pytest

from tests.gateway.conftest import Gateway
from tests.gateway.workers import _vector


def test_sdk_default_base64_decodes_to_the_workers_floats(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="tiny-embed", input="hello world")
    assert result.model == "tiny-embed"
    assert len(result.data) == 1
    expected = _vector("hello world")
    assert all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(result.data[0].embedding, expected, strict=True))
    assert result.usage.prompt_tokens == 2


def test_base64_on_the_wire_is_little_endian_float32(gateway: Gateway, api_key: str) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/embeddings",
        json={"model": "te", "input": ["a", "b"], "encoding_format": "base64"},
        headers={"authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 200
    data = response.json()["data"]
    decoded = array("f", base64.b64decode(data[1]["embedding"]))
    assert [round(v, 5) for v in decoded] == [round(v, 5) for v in _vector("b")]


def test_float_format_and_dimensions_pass_through(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="tiny-embed", input=["x", "y", "z"], encoding_format="float", dimensions=4)
    assert [len(d.embedding) for d in result.data] == [4, 4, 4]
    assert [d.index for d in result.data] == [0, 1, 2]


def test_token_arrays(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="tiny-embed", input=[[1, 2, 3], [4, 5]], encoding_format="float")
    assert len(result.data) == 2


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"input": []}, "input"),
        ({"input": ""}, "input"),
        ({"input": ["a", 1]}, "input"),
        ({"input": 5}, "input"),
        ({"input": "a", "encoding_format": "hex"}, "encoding_format"),
        ({"input": "a", "dimensions": 0}, "dimensions"),
        ({}, "input"),
    ],
)
def test_bad_input_names_the_field(gateway: Gateway, api_key: str, payload: dict[str, object], param: str) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/embeddings",
        json={"model": "tiny-embed", **payload},
        headers={"authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert response.headers["x-should-retry"] == "false"


def test_invalid_json_body(gateway: Gateway, api_key: str) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/embeddings",
        content=b"{not json",
        headers={"authorization": f"Bearer {api_key}", "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
