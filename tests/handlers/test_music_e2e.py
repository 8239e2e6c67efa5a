"""The music worker behind the gateway and the project's RunPod emulator, through the native API.

gateway -> emulator -> real worker code on a tiny ACE-Step 1.5: native submit, request-status
until ``done``, then the file at ``result_url`` is downloaded (signed, no key) and decoded. The
reference clip is a multipart upload the gateway stages and the worker fetches back by URL.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from typing import Any

import av
import httpx
import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from tests.gateway.conftest import Gateway, start_gateway, unique
from tests.handlers.test_music import tone_wav
from tests.handlers.tiny_music import ACE_RATE, build_tiny_acestep_pipeline
from tests.support.servers import ServerThread

pytestmark = pytest.mark.slow

ROUTING = """
upstream: {{base_url: "{upstream}", api_key: "emulator-accepts-any"}}
surfaces:
  music:
    default_model: ACE-Step-v1.5-turbo
    models:
      ACE-Step-v1.5-turbo:
        endpoint_id: music
        upstream_model: ACE-Step/acestep-v15-xl-turbo-diffusers
        inference_types: [txt2music]
        info:
          limits: {{min_duration: 10, max_duration: 600, min_inference_steps: 1, max_inference_steps: 100}}
          defaults: {{duration: 30, inference_steps: 2, guidance_scale: 7, format: flac, vocal_language: en}}
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    ace = build_tiny_acestep_pipeline(tmp_path_factory.mktemp("e2e-music") / "tiny-acestep")
    endpoints = {"music": EmulatorEndpoint(handler="handlers.music.handler:handler", env={"MUSIC_MODEL": str(ace)})}
    with pytest.MonkeyPatch.context() as patch:
        for name in ("MUSIC_MODEL", "MUSIC_ENGINE", "MUSIC_MIN_DURATION", "MUSIC_MAX_INLINE_BYTES"):
            patch.delenv(name, raising=False)  # restored after the module: handlers reload by env
        patch.setenv("HF_HUB_OFFLINE", "1")
        emulator = ServerThread(create_emulator_app(endpoints)).start()
        upstream = f"{emulator.url}/v2"
        gw = start_gateway(
            upstream, redis_url, f"{redis_prefix}music-e2e-{unique()}:", routing=ROUTING.format(upstream=upstream)
        )
        # The worker fetches a staged upload from the gateway's own (loopback) URL.
        allowed = [
            gw.url.removeprefix("http://"),
            *filter(None, os.environ.get("MEDIA_FETCH_ALLOWLIST", "").split(",")),
        ]
        patch.setenv("MEDIA_FETCH_ALLOWLIST", ",".join(allowed))
        try:
            yield gw
        finally:
            gw.server.stop()
            emulator.stop()


def native_run(gateway: Gateway, **request: Any) -> dict[str, Any]:
    """Submit txt2music and poll request-status until it is done or failed."""
    key = gateway.issue_key("music-e2e").key
    with httpx.Client(
        base_url=f"{gateway.url}/api/v1/client", timeout=30, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        submitted = client.post("/txt2music", **request)
        assert submitted.status_code == 200, submitted.text
        request_id = submitted.json()["data"]["request_id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            data: dict[str, Any] = client.get(f"/request-status/{request_id}").json()["data"]
            if data["status"] in ("done", "error"):
                return data
            time.sleep(0.1)
    raise AssertionError("the native job did not finish")


def decode(blob: bytes) -> tuple[str, int, int, float]:
    with av.open(io.BytesIO(blob)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return stream.codec_context.name, stream.rate, stream.channels, samples / stream.rate


def test_native_txt2music_result_url_is_the_song(gateway: Gateway) -> None:
    data = native_run(
        gateway,
        json={"model": "ACE-Step-v1.5-turbo", "caption": "lofi hip hop, mellow piano", "duration": 10.5,
              "seed": -1, "format": "wav", "lyrics": "[verse]\nquiet rain\n[chorus]\nla la", "bpm": 80},
    )  # fmt: skip
    assert data["status"] == "done", data
    song = httpx.get(data["result_url"], timeout=30)  # signed: no key needed
    assert song.status_code == 200 and song.headers["content-type"] == "audio/wav"
    codec, rate, channels, seconds = decode(song.content)
    assert (codec, rate, channels) == ("pcm_s16le", ACE_RATE, 2)
    assert seconds == pytest.approx(10.5, rel=0.1)


def test_native_txt2music_with_an_uploaded_reference(gateway: Gateway) -> None:
    form = {"model": "ACE-Step-v1.5-turbo", "caption": "the same tune on strings", "duration": "10", "seed": "3"}
    data = native_run(gateway, data=form, files={"reference_audio": ("style.wav", tone_wav(2.0), "audio/wav")})
    assert data["status"] == "done", data
    song = httpx.get(data["result_url"], timeout=30)
    assert song.headers["content-type"] == "audio/flac"  # the model's default format
    codec, rate, channels, seconds = decode(song.content)
    assert (codec, rate, channels) == ("flac", ACE_RATE, 2) and seconds == pytest.approx(10, rel=0.1)
