"""The video worker and transcription from a link behind the project's RunPod emulator.

Video runs gateway -> emulator -> real worker through the native API (submit, request-status
until done, the MP4 at ``result_url`` decoded). A ``vid2txt`` link must be a real platform's,
which is unreachable here, so ``source_url`` runs RunPod's own API against the emulator
(``/run`` with the job input app/tasks/transcribe.py builds, ``/status`` until COMPLETED).
"""

from __future__ import annotations

import base64
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
from tests.handlers.static_files import static_server
from tests.handlers.test_transcribe import TRANSCRIPT, tiny_wav
from tests.handlers.tiny_models import build_tiny_ltx_pipeline, build_tiny_whisper_model
from tests.support.servers import ServerThread

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    with static_server({"/talk.wav": (tiny_wav(), "audio/wav")}) as url:
        yield url


ROUTING = """
upstream: {{base_url: "{upstream}", api_key: "emulator-accepts-any"}}
surfaces:
  video:
    default_model: Ltxv_13B_0_9_8_Distilled_FP8
    models:
      Ltxv_13B_0_9_8_Distilled_FP8:
        endpoint_id: video
        upstream_model: Lightricks/LTX-Video-0.9.8-13B-distilled
        inference_types: [txt2video, img2video, aud2video]
        info:
          limits: {{min_width: 64, max_width: 256, min_height: 64, max_height: 256, resolution_step: 32,
                   min_frames: 1, max_frames: 33, min_fps: 8, max_fps: 30, min_steps: 1, max_steps: 8}}
          defaults: {{width: 64, height: 64, frames: 9, fps: 8, steps: 2}}
"""


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory, origin: str) -> Iterator[str]:
    ltx = build_tiny_ltx_pipeline(tmp_path_factory.mktemp("e2e-video") / "tiny-ltx")
    whisper = build_tiny_whisper_model(tmp_path_factory.mktemp("e2e-whisper") / "tiny-whisper")
    endpoints = {
        "video": EmulatorEndpoint(handler="handlers.video.handler:handler", env={"VIDEO_MODEL": str(ltx)}),
        "stt": EmulatorEndpoint(
            handler="handlers.transcribe.handler:handler",
            env={"TRANSCRIBE_MODEL": str(whisper), "TRANSCRIBE_CPU_THREADS": "1"},
        ),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in ("VIDEO_MODEL", "TRANSCRIBE_MODEL", "VIDEO_MAX_FRAMES", "VIDEO_WEIGHTS"):
            patch.delenv(name, raising=False)  # restored after the module: handlers reload by env
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("MEDIA_FETCH_ALLOWLIST", origin.removeprefix("http://"))
        server = ServerThread(create_emulator_app(endpoints)).start()
        try:
            yield f"{server.url}/v2"
        finally:
            server.stop()


@pytest.fixture(scope="module")
def gateway(emulator: str, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    gw = start_gateway(
        emulator, redis_url, f"{redis_prefix}video-e2e-{unique()}:", routing=ROUTING.format(upstream=emulator)
    )
    with pytest.MonkeyPatch.context() as patch:
        # The worker fetches the staged first frame from the gateway's own (loopback) URL.
        allowed = [gw.url.removeprefix("http://"), *os.environ["MEDIA_FETCH_ALLOWLIST"].split(",")]
        patch.setenv("MEDIA_FETCH_ALLOWLIST", ",".join(allowed))
        try:
            yield gw
        finally:
            gw.server.stop()


def native_run(gateway: Gateway, task: str, **request: Any) -> dict[str, Any]:
    """Submit a native task and poll request-status until it is done or failed."""
    key = gateway.issue_key("video-e2e").key
    with httpx.Client(base_url=f"{gateway.url}/api/v1/client", timeout=30,
                      headers={"Authorization": f"Bearer {key}", "Accept": "application/json"}) as client:
        submitted = client.post(f"/{task}", **request)
        assert submitted.status_code == 200, submitted.text
        request_id = submitted.json()["data"]["request_id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            data: dict[str, Any] = client.get(f"/request-status/{request_id}").json()["data"]
            if data["status"] in ("done", "error"):
                return data
            time.sleep(0.1)
    raise AssertionError("the native job did not finish")


def decode(blob: bytes) -> tuple[int, tuple[int, int, Any]]:
    with av.open(io.BytesIO(blob)) as container:
        stream = container.streams.video[0]
        return len(list(container.decode(stream))), (stream.width, stream.height, stream.average_rate)


def test_native_txt2video_result_url_is_the_mp4(gateway: Gateway) -> None:
    data = native_run(gateway, "txt2video", json={"model": "Ltxv_13B_0_9_8_Distilled_FP8", "prompt": "a red fox",
                                                  "width": 96, "height": 64, "frames": 12, "fps": 12, "steps": 2,
                                                  "seed": -1})
    assert data["status"] == "done", data
    video = httpx.get(data["result_url"], timeout=10)  # signed: no key needed
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert decode(video.content) == (12, (96, 64, 12))


def test_native_img2video_fetches_the_staged_first_frame(gateway: Gateway) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 20, 20)).save(buffer, format="PNG")
    form = {"model": "Ltxv_13B_0_9_8_Distilled_FP8", "prompt": "the fox runs", "frames": "9", "fps": "8",
            "seed": "1", "width": "64", "height": "64"}
    data = native_run(gateway, "img2video", data=form,
                      files={"first_frame_image": ("f.png", buffer.getvalue(), "image/png")})
    assert data["status"] == "done", data
    assert decode(httpx.get(data["result_url"], timeout=10).content) == (9, (64, 64, 8))


def test_native_aud2video_on_ltx_fails_naming_task(gateway: Gateway, origin: str) -> None:
    form = {"model": "Ltxv_13B_0_9_8_Distilled_FP8", "prompt": "a drum", "frames": "9", "fps": "8", "seed": "1"}
    data = native_run(gateway, "aud2video", data=form, files={"audio": ("a.wav", tiny_wav(), "audio/wav")})
    assert (data["status"], data["error_code"]) == ("error", "unsupported_task"), data
    assert "aud2video" in data["error"]


def run_job(base: str, endpoint: str, job_input: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """Submit with /run and poll /status to the end; (final status, outputs seen in progress)."""
    with httpx.Client(base_url=f"{base}/{endpoint}", timeout=30) as client:
        job_id = client.post("/run", json={"input": job_input}).json()["id"]
        seen: list[Any] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = client.get(f"/status/{job_id}").json()
            if status["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"):
                return status, seen
            if status.get("output") is not None:
                seen.append(status["output"])
            time.sleep(0.05)
    raise AssertionError("the job did not finish")


def test_txt2video_job_returns_a_playable_mp4(emulator: str) -> None:
    job = {"task": "txt2video", "model": "Lightricks/LTX-Video-0.9.8-13B-distilled", "prompt": "a red fox",
           "seed": 3, "width": 64, "height": 96, "frames": 10, "fps": 10, "steps": 2}
    status, _ = run_job(emulator, "video", job)
    assert status["status"] == "COMPLETED", status
    output = status["output"]
    (file,) = output["files"]
    with av.open(io.BytesIO(base64.b64decode(file["data"]))) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert (stream.width, stream.height, stream.average_rate) == (64, 96, 10)
    assert len(frames) == 10 and output["duration_s"] == 1.0
    assert output["model"] == job["model"]


def test_bad_video_input_fails_the_job_naming_the_field(emulator: str) -> None:
    status, _ = run_job(emulator, "video", {"task": "img2video", "prompt": "x", "frames": 9})
    assert status["status"] == "FAILED"
    assert '"param": "first_frame_image"' in status["error"]


def test_link_transcription_job(emulator: str, origin: str) -> None:
    job = {"model": "large-v3", "word_timestamps": False, "include_ts": False, "source_url": f"{origin}/talk.wav"}
    status, _ = run_job(emulator, "stt", job)
    assert status["status"] == "COMPLETED", status
    assert status["output"]["transcription"] == TRANSCRIPT


