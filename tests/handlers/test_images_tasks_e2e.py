"""img2img, img-rmbg and img-upscale through the project's RunPod emulator (real HTTP, real worker).

One emulated endpoint runs ``handlers.images.handler:handler`` with all three task models
configured by env, as a ``local:`` endpoint does. Jobs go in over the RunPod API
(``/v2/{endpoint}/runsync`` and ``/status``), the worker fetching pictures from a real HTTP
server, and through the gateway's native task API (``/api/v1/client/<task>``, multipart
upload staged by the gateway, fetched back by the worker, result downloaded).
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from app.emulator import EmulatorEndpoint, create_emulator_app
from handlers.common.errors import decode_error
from tests.gateway.conftest import RUNPOD_KEY, Gateway, start_gateway, unique
from tests.handlers.tiny_image_models import build_tiny_ben2_onnx, build_tiny_esrgan, image_bytes
from tests.handlers.tiny_models import build_tiny_image_pipeline
from tests.support.servers import ServerThread

pytestmark = pytest.mark.slow
_PHOTO = image_bytes(96, 72)


class _Photo(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(_PHOTO)))
        self.end_headers()
        self.wfile.write(_PHOTO)


@pytest.fixture(scope="module")
def photo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Photo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/photo.png"
    server.shutdown()
    server.server_close()


ROUTING = """
upstream: {{base_url: "{upstream}", api_key: "{runpod_key}"}}
surfaces:
  images:
    default_model: QwenImageEdit_Plus_NF4
    models:
      QwenImageEdit_Plus_NF4: {{endpoint_id: img, upstream_model: Qwen/Qwen-Image-Edit-2509,
                               inference_types: [img2img], info: {{limits: {{max_input_images: 3, max_steps: 50}}}}}}
      Ben2: {{endpoint_id: img, upstream_model: PramaLLC/BEN2, inference_types: [img-rmbg]}}
      RealESRGAN_x4plus: {{endpoint_id: img, aliases: [RealESRGAN_x4], inference_types: [img-upscale]}}
"""


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory, photo_url: str) -> Iterator[str]:
    root = tmp_path_factory.mktemp("e2e-image-tasks")
    env = {
        "IMAGES_MODEL": str(build_tiny_image_pipeline(root / "tiny-sd")),
        "IMAGES_UPSCALE_MODEL": str(build_tiny_esrgan(root / "RealESRGAN_x4plus.pth")),
        "IMAGES_RMBG_MODEL": str(build_tiny_ben2_onnx(root / "BEN2_Base.onnx")),
        # the picture server, and the gateway's staged uploads (127.0.0.1 on any port)
        "MEDIA_FETCH_ALLOWLIST": f"{photo_url.rsplit('/', 1)[0]},127.0.0.1",
    }
    endpoints = {"img": EmulatorEndpoint(handler="handlers.images.handler:handler", env=env)}
    with pytest.MonkeyPatch.context() as patch:
        for name in env:
            patch.delenv(name, raising=False)  # restored after the module
        server = ServerThread(create_emulator_app(endpoints)).start()
        try:
            yield f"{server.url}/v2/img"
        finally:
            server.stop()


def _finished(base: str, body: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(timeout=120) as client:
        job: dict[str, Any] = client.post(f"{base}/runsync?wait=60000", json=body).json()
        deadline = time.monotonic() + 120
        while job["status"] in ("IN_QUEUE", "IN_PROGRESS") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = client.get(f"{base}/status/{job['id']}").json()
    return job


def _image(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.partition(",")[2])))


def test_upscale_through_the_emulator(emulator: str, photo_url: str) -> None:
    job = _finished(emulator, {"input": {"task": "img-upscale", "model": "RealESRGAN_x4", "image": photo_url}})
    assert job["status"] == "COMPLETED", job
    assert _image(job["output"]["images"][0]).size == (384, 288)


def test_background_removal_through_the_emulator(emulator: str, photo_url: str) -> None:
    job = _finished(emulator, {"input": {"task": "img-rmbg", "model": "Ben2", "image": photo_url}})
    assert job["status"] == "COMPLETED", job
    cutout = _image(job["output"]["images"][0])
    assert cutout.mode == "RGBA" and cutout.size == (96, 72)
    assert cutout.getchannel("A").getextrema() == (0, 255)


def test_edit_through_the_emulator_is_reproducible(emulator: str, photo_url: str) -> None:
    body = {"input": {"task": "img2img", "model": "QwenImageEdit", "prompt": "make it blue", "images": [photo_url],
                      "seed": 11, "num_inference_steps": 2, "strength": 0.8}}  # fmt: skip
    first, again = _finished(emulator, body), _finished(emulator, body)
    assert first["status"] == again["status"] == "COMPLETED", first
    assert first["output"]["images"] == again["output"]["images"]
    assert _image(first["output"]["images"][0]).size == (96, 72)


def test_bad_input_fails_the_job_with_the_field(emulator: str, photo_url: str) -> None:
    job = _finished(emulator, {"input": {"task": "img2img", "prompt": "x", "image": photo_url, "images": [photo_url]}})
    assert job["status"] == "FAILED"
    error = decode_error({"error": job["error"]})
    assert error is not None and (error["type"], error["param"]) == ("invalid_request_error", "image")


@pytest.fixture(scope="module")
def stack(emulator: str, redis_url: str, redis_prefix: str) -> Iterator[tuple[Gateway, str]]:
    """The gateway in front of the emulated worker, and a key for it."""
    upstream = emulator.rsplit("/", 1)[0]
    routing = ROUTING.format(upstream=upstream, runpod_key=RUNPOD_KEY)
    prefix = f"{redis_prefix}img-tasks-{unique()}:"
    gateway: Gateway = start_gateway(
        upstream, redis_url, prefix, routing=routing, media_allowlist=frozenset({"127.0.0.1"})
    )
    try:
        yield gateway, gateway.issue_key("image-tasks").key
    finally:
        gateway.server.stop()


@pytest.fixture(scope="module")
def native(stack: tuple[Gateway, str]) -> Iterator[httpx.Client]:
    gateway, key = stack
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    with httpx.Client(base_url=f"{gateway.url}/api/v1/client", headers=headers, timeout=60) as client:
        yield client


def _native_result(client: httpx.Client, task: str, **kwargs: Any) -> Image.Image:
    response = client.post(f"/{task}", **kwargs)
    assert response.status_code == 200, response.text
    request_id = response.json()["data"]["request_id"]
    deadline = time.monotonic() + 120
    while True:
        data = client.get(f"/request-status/{request_id}").json()["data"]
        if data["status"] in ("done", "error") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert data["status"] == "done", data
    return Image.open(io.BytesIO(httpx.get(data["result_url"], timeout=30).content))


@pytest.mark.parametrize(("task", "model", "size", "mode"), [
    ("img-upscale", "RealESRGAN_x4", (384, 288), "RGB"),
    ("img-rmbg", "Ben2", (96, 72), "RGBA"),
    ("img2img", "QwenImageEdit_Plus_NF4", (96, 72), "RGB"),
])  # fmt: skip
def test_tasks_through_the_gateways_native_api(
    native: httpx.Client, task: str, model: str, size: tuple[int, int], mode: str
) -> None:
    fields = {"model": model} | ({"prompt": "blue", "steps": "2", "seed": "3"} if task == "img2img" else {})
    image = _native_result(native, task, data=fields, files={"image": ("in.png", _PHOTO, "image/png")})
    assert (image.size, image.mode) == (size, mode)


def test_openai_images_edit_runs_the_real_worker(stack: tuple[Gateway, str]) -> None:
    """/v1/images/edits through the official SDK: the upload staged, fetched by the worker, edited."""
    gateway, key = stack
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=120)
    result = client.images.edit(model="QwenImageEdit_Plus_NF4", image=("in.png", _PHOTO, "image/png"),
                                prompt="blue", response_format="b64_json")
    assert result.data and result.data[0].b64_json
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    assert (image.size, image.mode) == ((96, 72), "RGB")
