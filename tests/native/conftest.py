"""A gateway serving the native task API, in front of the emulator running contract-following
fake workers (tests/native/workers.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from tests.gateway.conftest import ADMIN_KEY, RUNPOD_KEY, Gateway, start_gateway
from tests.support.servers import ServerThread

ROUTING = """
upstream: {{base_url: "{upstream}", api_key: "{runpod_key}"}}
surfaces:
  images:
    default_model: Flux1schnell
    models:
      Flux1schnell:
        endpoint_id: img-ep
        inference_types: [txt2img]
        info:
          limits: {{min_width: 256, max_width: 2048, min_height: 256, max_height: 2048, resolution_step: 8,
                   min_steps: 1, max_steps: 10}}
          features: {{supports_guidance: false, supports_steps: true, supports_negative_prompt: false}}
          defaults: {{width: 1024, height: 1024, steps: 4}}
        pricing: {{usd: 0.00136, per: {{pixels: 262144, steps: 4}}}}
      QwenImageEdit_Plus_NF4:
        endpoint_id: img-ep
        inference_types: [img2img]
        info: {{limits: {{max_input_images: 3, max_steps: 50}}}}
      Ben2:
        endpoint_id: img-ep
        inference_types: [img-rmbg]
        info: {{limits: {{max_width: 4096, max_height: 4096}}}}
      RealESRGAN_x4plus: {{endpoint_id: img-ep, aliases: [RealESRGAN_x4], inference_types: [img-upscale]}}
      plain-image: {{endpoint_id: img-ep}}
  chat:
    default_model: booster-chat
    models:
      booster-chat: {{endpoint_id: booster-ep}}
      Nanonets_Ocr_S_F16: {{endpoint_id: ocr-ep, inference_types: [img2txt]}}
  transcribe:
    default_model: WhisperLargeV3
    models:
      WhisperLargeV3:
        endpoint_id: stt-ep
        inference_types: [video2text, audio2text, video_file2text, audio_file2text]
  embeddings:
    default_model: Bge_M3_INT8
    models:
      Bge_M3_INT8: {{endpoint_id: emb-ep, inference_types: [txt2embedding]}}
  speech:
    default_model: Kokoro
    models:
      Kokoro:
        endpoint_id: media-ep
        inference_types: [txt2audio]
        info:
          limits: {{min_text: 1, max_text: 500, min_speed: 0.5, max_speed: 2}}
          features: {{supports_custom_voice: true, supports_voice_clone: false}}
          defaults: {{lang: en-us, voice: af_sky}}
        languages: [{{slug: en-us, voices: [{{slug: af_sky, gender: female}}]}}]
      Chatterbox:
        endpoint_id: media-ep
        inference_types: [txt2audio]
        info: {{features: {{supports_custom_voice: false, supports_voice_clone: true}}}}
  music:
    default_model: ACE-Step-v1.5-turbo
    models:
      ACE-Step-v1.5-turbo: {{endpoint_id: media-ep, inference_types: [txt2music]}}
  video:
    default_model: Ltx2_3_19B_Dist_INT8
    models:
      Ltx2_3_19B_Dist_INT8:
        endpoint_id: media-ep
        inference_types: [txt2video, img2video, aud2video]
        info: {{limits: {{min_fps: 8, max_fps: 30, max_frames: 241}}}}
limits:
  groups:
    whisper: [vid2txt, aud2txt, videofile2txt, audiofile2txt]
  tiers:
    basic:
      rpm: 1
      tasks:
        whisper: {{rpm: 1, rpd: 10}}
        request-status: {{rpm: 2}}
"""


@pytest.fixture(scope="session")
def native_emulator() -> Iterator[ServerThread]:
    endpoints = {
        "img-ep": EmulatorEndpoint(handler="tests.native.workers:images", concurrency=4),
        "media-ep": EmulatorEndpoint(handler="tests.native.workers:media", concurrency=4),
        "stt-ep": EmulatorEndpoint(handler="tests.native.workers:transcribe", concurrency=2),
        "ocr-ep": EmulatorEndpoint(handler="tests.native.workers:ocr", concurrency=2),
        "booster-ep": EmulatorEndpoint(handler="tests.native.workers:booster", concurrency=2),
        "emb-ep": EmulatorEndpoint(handler="tests.gateway.workers:embeddings", concurrency=2),
    }
    server = ServerThread(create_emulator_app(endpoints, api_key=RUNPOD_KEY)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def native_gateway(native_emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    gw = start_gateway(
        f"{native_emulator.url}/v2",
        redis_url,
        f"{redis_prefix}native:",
        routing=ROUTING.format(upstream=f"{native_emulator.url}/v2", runpod_key=RUNPOD_KEY),
        admin_key=ADMIN_KEY,
        media_allowlist=frozenset({"127.0.0.1"}),
        webhook_allowlist=frozenset({"127.0.0.1"}),
    )
    yield gw
    gw.server.stop()


@pytest.fixture(scope="session")
def native_key(native_gateway: Gateway) -> str:
    return native_gateway.issue_key("native-tenant").key


class Native:
    """A client of the native API as the seeds' SDK uses it: bearer key, JSON answers."""

    def __init__(self, gateway: Gateway, key: str) -> None:
        self.base = f"{gateway.url}/api/v1/client"
        self.http = httpx.Client(headers={"Authorization": f"Bearer {key}", "Accept": "application/json"}, timeout=30)

    def submit(self, task: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(f"{self.base}/{task}", **kwargs)

    def status(self, request_id: str) -> httpx.Response:
        return self.http.get(f"{self.base}/request-status/{request_id}")

    def wait(self, request_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            response = self.status(request_id)
            assert response.status_code == 200, response.text
            data: dict[str, Any] = response.json()["data"]
            if data["status"] in ("done", "error") or time.monotonic() > deadline:
                return data
            time.sleep(0.1)

    def run(self, task: str, **kwargs: Any) -> dict[str, Any]:
        response = self.submit(task, **kwargs)
        assert response.status_code == 200, response.text
        return self.wait(response.json()["data"]["request_id"])


@pytest.fixture
def native(native_gateway: Gateway, native_key: str) -> Iterator[Native]:
    client = Native(native_gateway, native_key)
    yield client
    client.http.close()
