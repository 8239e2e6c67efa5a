"""The video worker and transcription from a link behind the project's RunPod emulator.

Neither has an OpenAI twin (/v1) and the native routes (/api/v1/client/txt2video, vid2txt)
are the gateway's side, so this runs RunPod's own API against the emulator: ``/run`` with the
job input app/tasks/video.py and app/tasks/transcribe.py build, ``/status`` until COMPLETED,
then the MP4 in the output is decoded and the transcript read.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from typing import Any

import av
import httpx
import pytest

from app.emulator import EmulatorEndpoint, create_emulator_app
from tests.handlers.static_files import static_server
from tests.handlers.test_transcribe import TRANSCRIPT, tiny_wav
from tests.handlers.tiny_models import build_tiny_ltx_pipeline, build_tiny_whisper_model
from tests.support.servers import ServerThread

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    with static_server({"/talk.wav": (tiny_wav(), "audio/wav")}) as url:
        yield url


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


