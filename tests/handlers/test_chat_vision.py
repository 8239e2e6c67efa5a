"""Vision chat on a tiny Qwen2-VL through the real transformers engine (CPU, offline).

The model is built here with random weights and loaded by the handler exactly as a hub id
would be (tokenizer + image processor + AutoModelForImageTextToText). Images come as data
URIs and as http URLs from a loopback server, through the media helper.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.chat import handler as chat_handler
from handlers.chat.engine import ChatSettings
from handlers.chat.handler import handler
from handlers.common.errors import decode_error
from tests.contracts.shape import check_contract_case, load_contract
from tests.handlers.static_files import static_server
from tests.handlers.tiny_image_models import image_bytes
from tests.handlers.tiny_vlm import build_tiny_vlm

pytestmark = pytest.mark.slow  # loads a real (tiny) model

ROUTE = "/v1/chat/completions"
PAGE = image_bytes(120, 90)
OTHER = image_bytes(90, 120, "JPEG")


def data_uri(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    with static_server({"/page.png": (PAGE, "image/png"), "/page.html": (b"<html></html>", "text/html")}) as url:
        yield url


@pytest.fixture(scope="module", autouse=True)
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory, files: str) -> Iterator[Path]:
    path = build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("CHAT_MODEL", str(path))
        patch.setenv("CHAT_ENGINE", "transformers")
        patch.setenv("CHAT_MAX_IMAGES", "2")
        patch.setenv("CHAT_MAX_IMAGE_PIXELS", str(1000 * 1000))
        patch.setenv("MEDIA_FETCH_ALLOWLIST", files)
        for name in ("CHAT_SERVED_MODEL_NAME", "MAX_CONCURRENCY", "CHAT_MAX_MODEL_LEN", "CHAT_DEFAULT_MAX_TOKENS"):
            patch.delenv(name, raising=False)
        chat_handler.unload_engine()
        yield path
        chat_handler.unload_engine()


def ask(*images: str, text: str = "Extract all text from this image.", **body: Any) -> dict[str, Any]:
    content = [{"type": "text", "text": text}, *({"type": "image_url", "image_url": {"url": u}} for u in images)]
    body = {"model": "tiny-vl", "messages": [{"role": "user", "content": content}], "max_tokens": 6,
            "temperature": 0, **body}  # fmt: skip
    return {"id": "job-1", "input": {"openai_route": ROUTE, "openai_input": body}}


async def run(job: dict[str, Any]) -> list[Any]:
    return [item async for item in handler(job)]


async def answer(job: dict[str, Any]) -> dict[str, Any]:
    outputs = await run(job)
    assert len(outputs) == 1 and "error" not in outputs[0], outputs
    result: dict[str, Any] = outputs[0]
    return result


async def error_of(job: dict[str, Any]) -> dict[str, Any]:
    outputs = await run(job)
    error = decode_error(outputs[-1])
    assert error is not None, outputs
    return error


def image_tokens(data: bytes) -> int:
    """What the model's own image processor says one image costs (Qwen2-VL: patches / merge²)."""
    import io

    from PIL import Image
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(ChatSettings.from_env().model)  # type: ignore[no-untyped-call]
    grid = processor(images=[Image.open(io.BytesIO(data)).convert("RGB")], return_tensors="pt")["image_grid_thw"]
    return int(grid[0].prod()) // int(processor.merge_size) ** 2


async def test_vision_chat_counts_the_image_in_usage() -> None:
    with_image = await answer(ask(data_uri(PAGE)))
    text_only = await answer(ask())
    assert with_image["object"] == "chat.completion"
    assert with_image["choices"][0]["finish_reason"] == "length"
    assert with_image["usage"]["completion_tokens"] == 6
    # The placeholder became one token per merged patch, framed by vision start/end.
    extra = with_image["usage"]["prompt_tokens"] - text_only["usage"]["prompt_tokens"]
    assert extra == image_tokens(PAGE) + 2 and image_tokens(PAGE) > 1


async def test_the_model_sees_the_pixels() -> None:
    body: dict[str, Any] = {"logprobs": True, "top_logprobs": 3, "max_tokens": 2}
    page, other = await answer(ask(data_uri(PAGE), **body)), await answer(ask(data_uri(OTHER, "image/jpeg"), **body))
    first = [r["choices"][0]["logprobs"]["content"][0]["top_logprobs"] for r in (page, other)]
    assert [t["logprob"] for t in first[0]] != [t["logprob"] for t in first[1]]


async def test_url_and_data_uri_give_the_same_answer(files: str) -> None:
    by_url = await answer(ask(f"{files}/page.png", max_tokens=8))
    inline = await answer(ask(data_uri(PAGE), max_tokens=8))
    assert by_url["choices"][0]["message"] == inline["choices"][0]["message"]
    assert by_url["usage"] == inline["usage"]


async def test_ocr_request_as_the_gateway_sends_it_streams_the_same_text() -> None:
    # app/tasks/ocr.py: one user turn, instruction text then the image, temperature 0.
    sync = await answer(ask(data_uri(PAGE), max_tokens=12))
    pieces = await run(ask(data_uri(PAGE), max_tokens=12, stream=True))
    assert pieces[-1] == "data: [DONE]\n\n"
    import json

    chunks = [json.loads(p[6:]) for p in pieces[:-1]]
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert streamed == sync["choices"][0]["message"]["content"] and streamed


async def test_two_images_in_one_turn() -> None:
    both = await answer(ask(data_uri(PAGE), data_uri(OTHER, "image/jpeg")))
    one = await answer(ask(data_uri(PAGE)))
    assert both["usage"]["prompt_tokens"] == one["usage"]["prompt_tokens"] + image_tokens(OTHER) + 2


PARAM = "messages.0.content.1.image_url.url"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        (data_uri(PAGE[:40]), "invalid_image"),  # a PNG cut short: the header names no size
        (data_uri(b"%PDF-1.7 not a picture", "application/pdf"), "unsupported_format"),
        (data_uri(b"\x89PNG\r\n\x1a\n" + b"\0" * 64), "invalid_image"),
        ("data:image/png;base64,@@@", "invalid_base64"),
        ("ftp://example.com/page.png", "invalid_url"),
        ("http://10.1.2.3/page.png", "url_not_allowed"),
        ("http://169.254.169.254/latest/meta-data", "url_not_allowed"),
        (data_uri(image_bytes(1200, 1000)), "image_too_large"),  # over CHAT_MAX_IMAGE_PIXELS
    ],
)
async def test_bad_images_fail_naming_the_part(url: str, code: str) -> None:
    error = await error_of(ask(url))
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", PARAM, code)


async def test_bad_images_by_url_fail_naming_the_part(files: str, monkeypatch: pytest.MonkeyPatch) -> None:
    error = await error_of(ask(f"{files}/page.html"))
    assert (error["param"], error["code"]) == (PARAM, "unsupported_format")
    error = await error_of(ask(f"{files}/missing.png"))
    assert (error["param"], error["code"]) == (PARAM, "media_fetch_failed")
    monkeypatch.setenv("MEDIA_MAX_IMAGE_MB", str(len(PAGE) / 2 / 1024 / 1024))  # half the page
    error = await error_of(ask(f"{files}/page.png"))
    assert (error["param"], error["code"]) == (PARAM, "media_too_large")


async def test_too_many_images() -> None:
    error = await error_of(ask(data_uri(PAGE), data_uri(PAGE), data_uri(PAGE)))
    assert (error["param"], error["code"]) == ("messages.0.content.3.image_url.url", "too_many_images")


CASES = [c for c in load_contract("chat")["cases"] if c.get("fixture_model") == "tiny-vlm"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
async def test_contract_case(case: dict[str, Any]) -> None:
    outputs = await run({"id": "job-1", "input": case["input"]})
    check_contract_case(case, outputs)
