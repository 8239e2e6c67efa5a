"""The MCP server with the official ``mcp`` client: tools, results, job status, auth, errors."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from app.mcp.schemas import PRICE_TOOLS, TASK_TOOLS
from tests.gateway.conftest import Gateway
from tests.mcp.conftest import mcp_session


def _payload(result: types.CallToolResult) -> dict[str, Any]:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    payload: dict[str, Any] = json.loads(first.text)
    return payload


@pytest.fixture(scope="module")
def key(mcp_gateway: Gateway) -> str:
    return mcp_gateway.issue_key("mcp-tenant").key


@pytest.fixture(scope="module")
def impatient_keys(impatient_gateway: Gateway) -> tuple[str, str]:
    return impatient_gateway.issue_key("owner").key, impatient_gateway.issue_key("other").key


async def test_lists_every_tool_with_the_routes_schemas(mcp_gateway: Gateway, key: str) -> None:
    async with mcp_session(mcp_gateway, key) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    expected = {*TASK_TOOLS, *PRICE_TOOLS, "get_balance", "get_available_models", "check_job_status"}
    assert set(tools) == expected
    image = tools["text_to_image"].input_schema
    assert image["type"] == "object" and image["required"] == ["model", "prompt"]
    assert image["properties"]["steps"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert "webhook_url" not in image["properties"]
    assert "Flux1schnell" in (tools["text_to_image"].description or "")
    upscale = tools["image_upscale"].input_schema
    assert upscale["required"] == ["model", "image"] and upscale["properties"]["image"]["type"] == "string"
    assert tools["image_to_image"].input_schema["$defs"]["Lora"]["required"] == ["name"]
    assert tools["audio_url_transcription_price"].input_schema["required"] == ["model"]


async def test_models_and_balance(mcp_gateway: Gateway, key: str) -> None:
    async with mcp_session(mcp_gateway, key) as session:
        models = _payload(await session.call_tool("get_available_models", {}))
        balance = _payload(await session.call_tool("get_balance", {}))
        price = _payload(await session.call_tool("text_to_image_price", {"model": "Flux1schnell", "width": 512,
                                                                         "height": 512, "steps": 4}))
    slugs = {model["slug"]: model for model in models["models"]}
    assert models["success"] and models["count"] == len(slugs)
    assert slugs["Flux1schnell"]["inference_types"] == ["txt2img"]
    assert balance["success"] and balance["currency"] == "USD" and isinstance(balance["balance"], float)
    assert price == {"success": True, "price": {"price": 0.00136, "currency": "USD"}}


async def test_text_to_image_returns_the_file_link_and_the_image(mcp_gateway: Gateway, key: str) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with mcp_session(mcp_gateway, key) as session:
        result = await session.call_tool("text_to_image", {"model": "Flux1schnell", "prompt": "a red fox",
                                                           "width": 256, "height": 256, "seed": 7},
                                         progress_callback=on_progress)
        assert not result.is_error, result.content
        payload = _payload(result)
        assert payload["success"] and payload["status"] == "done"
        link = payload["result_url"]
        assert link.startswith(f"{mcp_gateway.url}/v1/files/")
        image = result.content[1]
        assert isinstance(image, types.ImageContent) and image.mime_type == "image/png"
        downloaded = httpx.get(link, timeout=10)
        assert downloaded.status_code == 200 and downloaded.content == base64.b64decode(image.data)
        # A file given as a URL: the gateway fetches it (here, the image just made).
        upscaled = _payload(await session.call_tool("image_upscale", {"model": "RealESRGAN_x4plus", "image": link}))
        assert upscaled["status"] == "done" and upscaled["result_url"] != link
    assert progress == [] or all(0 <= p <= 100 for p in progress)


async def test_transcription_tools_return_the_text(mcp_gateway: Gateway, key: str) -> None:
    async with mcp_session(mcp_gateway, key) as session:
        linked = _payload(await session.call_tool("video_url_transcription", {
            "model": "WhisperLargeV3", "video_url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "include_ts": True}))
        wav = b"RIFF" + (36).to_bytes(4, "little") + b"WAVEfmt " + bytes(64)
        uploaded = _payload(await session.call_tool("audio_transcription", {
            "model": "WhisperLargeV3", "audio": "data:audio/wav;base64," + base64.b64encode(wav).decode()}))
    assert linked["status"] == "done"
    assert linked["result"].splitlines()[0] == "[00:00:00.000 --> 00:00:01.500] link:www.youtube.com"
    assert uploaded["result"] == f"bytes{len(wav)} second line"


async def test_a_job_past_the_wait_is_followed_with_check_job_status(
    impatient_gateway: Gateway, impatient_keys: tuple[str, str]
) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async with mcp_session(impatient_gateway, impatient_keys[0]) as session:
        started = _payload(await session.call_tool("text_to_embedding", {"model": "Bge_M3_INT8", "input": "hello"},
                                                   progress_callback=on_progress))
        assert progress == [(0.0, 100.0, "pending")]  # a progress notification before the answer
        assert started["success"] and started["status"] in ("pending", "processing")
        assert "check_job_status" in started["message"]
        job_id = started["job_id"]
        for _ in range(100):
            status = _payload(await session.call_tool("check_job_status", {"job_id": job_id}))
            if status["status"] == "done":
                break
            await asyncio.sleep(0.1)
    assert status["job_id"] == job_id and len(json.loads(status["result"])) == 1


async def test_another_keys_job_is_not_found(impatient_gateway: Gateway, impatient_keys: tuple[str, str]) -> None:
    owner, other = impatient_keys
    async with mcp_session(impatient_gateway, owner) as session:
        started = await session.call_tool("text_to_embedding", {"model": "Bge_M3_INT8", "input": "x"})
    job_id = _payload(started)["job_id"]
    async with mcp_session(impatient_gateway, other) as session:
        result = await session.call_tool("check_job_status", {"job_id": job_id})
    assert result.is_error and _payload(result)["error"].startswith("No job")


async def test_bad_arguments_are_a_tool_error_naming_every_field(mcp_gateway: Gateway, key: str) -> None:
    async with mcp_session(mcp_gateway, key) as session:
        result = await session.call_tool("text_to_image", {"model": "Flux1schnell", "width": "wide", "steps": 0})
        missing_file = await session.call_tool("image_upscale", {"model": "RealESRGAN_x4plus", "image": "not base64!"})
        unknown_model = await session.call_tool("text_to_image", {"model": "nope", "prompt": "x"})
    assert result.is_error
    error = _payload(result)["error"]
    assert error.startswith("Invalid arguments:")
    assert "prompt: The prompt field is required." in error
    assert "width:" in error and "steps:" in error
    assert missing_file.is_error and "image: The image field must be a URL" in _payload(missing_file)["error"]
    assert unknown_model.is_error and "model: The selected model does not exist." in _payload(unknown_model)["error"]


async def test_a_private_url_is_refused(mcp_gateway: Gateway, key: str) -> None:
    async with mcp_session(mcp_gateway, key) as session:
        result = await session.call_tool("image_upscale", {"model": "RealESRGAN_x4plus",
                                                           "image": "http://10.0.0.1/cat.png"})
    assert result.is_error and "private or reserved address" in _payload(result)["error"]


@pytest.mark.parametrize("key", [None, "sk-not-a-key"])
def test_unauthenticated_requests_are_refused(mcp_gateway: Gateway, key: str | None) -> None:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = httpx.post(f"{mcp_gateway.url}/mcp", json=body, headers=headers, timeout=10)
    assert response.status_code == 401
    assert "tools" not in response.text


async def test_the_official_client_with_a_wrong_key_cannot_connect(mcp_gateway: Gateway) -> None:
    # The SDK reports the 401 as an MCPError inside its task groups; the raw status is checked above.
    with pytest.raises(ExceptionGroup) as raised:
        async with asyncio.timeout(10), mcp_session(mcp_gateway, "sk-wrong"):
            pass
    assert raised.group_contains(MCPError, depth=2)


async def test_a_failed_job_is_a_tool_error_with_its_message(mcp_gateway: Gateway, key: str) -> None:
    async with mcp_session(mcp_gateway, key) as session:
        result = await session.call_tool("text_to_image", {"model": "Flux1schnell", "prompt": "fail"})
    payload = _payload(result)
    assert result.is_error and payload["success"] is False and payload["status"] == "error"
    assert "cannot draw that" in payload["error"] and payload["job_id"]
