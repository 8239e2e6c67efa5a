"""The images worker's img2img, img-rmbg and img-upscale tasks (CPU, no hub).

Every case goes through ``handler(job)`` and the real loading code: a tiny random
StableDiffusion checkpoint turned into its img2img pipeline, an RRDBNet state dict in
Real-ESRGAN's layout, an ONNX graph with BEN2's interface (``tiny_image_models.py``). Input
pictures are served by a real HTTP server on 127.0.0.1 (allowlisted like the gateway's own
staged uploads), so fetching, sniffing, limits and decoding are the production path.
"""

from __future__ import annotations

import asyncio
import base64
import io
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from PIL import Image

from handlers.common.errors import decode_error
from handlers.common.progress import EMULATOR_PROGRESS_KEY
from handlers.images.handler import handler
from tests.contracts.shape import assert_same_shape, load_contract
from tests.handlers.cancelling import cancel_after_first_progress
from tests.handlers.tiny_image_models import build_tiny_ben2_onnx, build_tiny_esrgan, image_bytes, picture
from tests.handlers.tiny_models import build_tiny_image_pipeline

pytestmark = pytest.mark.slow
_ENV = (
    "IMAGES_DEVICE", "IMAGES_DTYPE", "IMAGES_EDIT_MODEL", "IMAGES_QUANTIZE", "IMAGES_MAX_SIDE", "IMAGES_MIN_SIDE",
    "IMAGES_MAX_INPUT_PIXELS", "IMAGES_UPSCALE_TILE", "IMAGES_UPSCALE_TILE_PAD", "IMAGES_UPSCALE_MAX_OUTPUT_SIDE",
    "IMAGES_UPSCALE_FILE", "IMAGES_RMBG_FILE", "IMAGES_MAX_INLINE_BYTES", "BUCKET_ENDPOINT_URL", "MEDIA_MAX_IMAGE_MB",
)  # fmt: skip


class _Pictures(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, tuple[str, bytes]]] = {}

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        content_type, body = self.files.get(self.path, ("text/plain", b"missing"))
        self.send_response(200 if self.path in self.files else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


_Pictures.files = {
    "/photo.png": ("image/png", image_bytes(40, 24)),
    "/square.png": ("image/png", image_bytes(64, 64)),
    "/wide.png": ("image/png", image_bytes(96, 72)),
    "/alpha.png": ("image/png", image_bytes(32, 20, alpha=True)),
    "/rotated.jpg": ("image/jpeg", image_bytes(24, 12, "JPEG", orientation=6)),
    "/odd.png": ("image/png", image_bytes(21, 13)),
    "/corrupt.png": ("image/png", image_bytes(40, 24)[:60]),
    "/page.html": ("text/html", b"<!doctype html><p>not a picture</p>"),
    "/drawing.svg": ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
    "/huge.png": ("image/png", image_bytes(300, 300)),
}


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pictures)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("image-task-models")
    return {
        "sd": build_tiny_image_pipeline(root / "tiny-sd"),
        "esrgan": build_tiny_esrgan(root / "RealESRGAN_x4plus.pth"),
        "esrgan_x2": build_tiny_esrgan(root / "RealESRGAN_x2plus.pth", unshuffle=2),
        "ben2": build_tiny_ben2_onnx(root / "BEN2_Base.onnx"),
    }


@pytest.fixture(autouse=True)
def _env(models: dict[str, Path], origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMAGES_MODEL", str(models["sd"]))
    monkeypatch.setenv("IMAGES_UPSCALE_MODEL", str(models["esrgan"]))
    monkeypatch.setenv("IMAGES_RMBG_MODEL", str(models["ben2"]))
    monkeypatch.setenv("MEDIA_FETCH_ALLOWLIST", origin)


def run(payload: Any, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    job = {"id": "job-1", "input": payload, EMULATOR_PROGRESS_KEY: progress or (lambda update: None)}
    return asyncio.run(handler(job))


def decoded(uri: str) -> Image.Image:
    head, _, data = uri.partition(",")
    assert head.startswith("data:image/") and head.endswith(";base64")
    return Image.open(io.BytesIO(base64.b64decode(data)))


def err(out: dict[str, Any]) -> dict[str, Any]:
    error = decode_error(out)
    assert error is not None, {k: v for k, v in out.items() if k != "images"}
    return error


def edit(origin: str, **extra: Any) -> dict[str, Any]:
    return {"task": "img2img", "prompt": "make it blue", "image": f"{origin}/wide.png",
            "num_inference_steps": 2, "seed": 5, **extra}  # fmt: skip


# --- img-upscale -------------------------------------------------------------------------


def test_upscale_is_exactly_four_times_and_reports_progress(origin: str) -> None:
    updates: list[dict[str, Any]] = []
    out = run({"task": "img-upscale", "image": f"{origin}/photo.png", "model": "RealESRGAN_x4"}, updates.append)
    assert "error" not in out, out.get("error")
    image = decoded(out["images"][0])
    assert (image.size, image.mode, image.format) == ((160, 96), "RGB", "PNG")
    assert (out["width"], out["height"], out["scale"], out["task"]) == (160, 96, 4, "img-upscale")
    assert out["model"] == "RealESRGAN_x4" and out["image_url"] == out["images"][0]
    assert updates and updates[-1]["progress"] == 95.0


def test_upscale_keeps_alpha_and_applies_exif_orientation(origin: str) -> None:
    rgba = decoded(run({"task": "img-upscale", "image": f"{origin}/alpha.png"})["images"][0])
    assert rgba.mode == "RGBA" and rgba.size == (128, 80)
    alpha = rgba.getchannel("A")
    assert (alpha.getpixel((10, 40)), alpha.getpixel((118, 40))) == (255, 60)  # away from the edge's ringing
    rotated = decoded(run({"task": "img-upscale", "image": f"{origin}/rotated.jpg"})["images"][0])
    assert rotated.size == (48, 96)  # 24x12 stored, shown turned by 90 degrees: 12x24, x4


def test_tiles_join_without_seams(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = decoded(run({"task": "img-upscale", "image": f"{origin}/square.png"})["images"][0])
    monkeypatch.setenv("IMAGES_UPSCALE_TILE", "32")  # 4 tiles, each with 24 px of context
    monkeypatch.setenv("IMAGES_UPSCALE_TILE_PAD", "24")
    tiled = decoded(run({"task": "img-upscale", "image": f"{origin}/square.png"})["images"][0])
    import numpy as np

    difference = np.abs(np.asarray(whole, dtype=np.int16) - np.asarray(tiled, dtype=np.int16))
    assert whole.size == tiled.size == (256, 256)
    assert difference.max() <= 1  # float rounding only: the context covers the receptive field


def test_scale_two_and_an_x2_model(origin: str, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    out = run({"task": "img-upscale", "image": f"{origin}/odd.png", "scale": 2})
    assert decoded(out["images"][0]).size == (42, 26) and out["scale"] == 2  # x4 then Lanczos down
    monkeypatch.setenv("IMAGES_UPSCALE_MODEL", str(models["esrgan_x2"]))  # pixel-unshuffle model
    out = run({"task": "img-upscale", "image": f"{origin}/odd.png"})
    assert decoded(out["images"][0]).size == (42, 26) and out["scale"] == 2  # odd sides padded and cropped
    assert err(run({"task": "img-upscale", "image": f"{origin}/odd.png", "scale": 4}))["param"] == "scale"


def test_output_limit_is_enforced_before_any_work(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGES_UPSCALE_MAX_OUTPUT_SIDE", "128")
    updates: list[dict[str, Any]] = []
    error = err(run({"task": "img-upscale", "image": f"{origin}/photo.png"}, updates.append))  # 160 wide
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "image", "image_too_large")
    assert updates == []


def test_a_cancelled_upscale_stops_between_tiles(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGES_UPSCALE_TILE", "32")
    updates = asyncio.run(
        cancel_after_first_progress(handler, {"task": "img-upscale", "image": f"{origin}/square.png"})
    )
    assert len(updates) == 1


def test_a_file_that_is_not_rrdbnet_fails_to_load(tmp_path: Path, origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    torch.save({"params_ema": {"weight": torch.zeros(2)}}, tmp_path / "other.pth")
    monkeypatch.setenv("IMAGES_UPSCALE_MODEL", str(tmp_path / "other.pth"))
    error = err(run({"task": "img-upscale", "image": f"{origin}/photo.png"}))
    assert (error["type"], error["code"]) == ("server_error", "model_load_failed")


# --- img-rmbg ----------------------------------------------------------------------------


def test_background_removal_gives_rgba_with_a_real_matte(origin: str) -> None:
    out = run({"task": "img-rmbg", "image": f"{origin}/photo.png", "model": "Ben2"})
    assert "error" not in out, out.get("error")
    image = decoded(out["images"][0])
    assert (image.mode, image.size, image.format, out["task"]) == ("RGBA", (40, 24), "PNG", "img-rmbg")
    alpha = image.getchannel("A")
    assert alpha.getextrema() == (0, 255)  # stretched to the full range, as BEN2 does
    assert len(set(alpha.getdata())) > 8  # a matte, not a constant or a threshold
    assert image.convert("RGB").tobytes() == picture(40, 24).tobytes()  # colours untouched


def test_background_removal_keeps_existing_transparency(origin: str) -> None:
    out = run({"task": "img-rmbg", "image": f"{origin}/alpha.png", "output_format": "webp"})
    image = decoded(out["images"][0])
    assert image.format == "WEBP" and image.mode == "RGBA"
    original = picture(32, 20, alpha=True).getchannel("A")
    assert all(a <= o for a, o in zip(image.getchannel("A").getdata(), original.getdata(), strict=True))
    assert err(run({"task": "img-rmbg", "image": f"{origin}/alpha.png", "output_format": "jpeg"}))["param"] == (
        "output_format"
    )


# --- img2img -----------------------------------------------------------------------------


def test_edit_same_seed_same_bytes_other_seed_other_bytes(origin: str) -> None:
    first = run(edit(origin))
    assert "error" not in first, first.get("error")
    assert run(edit(origin))["images"] == first["images"]
    assert run(edit(origin, seed=6))["images"] != first["images"]
    image = decoded(first["images"][0])
    assert image.size == (96, 72) and (first["width"], first["height"], first["task"]) == (96, 72, "img2img")
    assert first["seed"] == 5 and first["num_inference_steps"] == 2


def test_edit_size_strength_and_negative_prompt(origin: str) -> None:
    out = run(edit(origin, width=70, height=90, strength=0.5, negative_prompt="blurry", guidance_scale=3.0))
    assert "error" not in out, out["error"]
    assert decoded(out["images"][0]).size == (72, 88)  # rounded to the VAE's multiple of 8
    assert "ignored" not in out  # SD img2img takes all of them
    weaker = run(edit(origin, width=70, height=90, strength=1.0, negative_prompt="blurry", guidance_scale=3.0))
    assert weaker["images"] != out["images"]


def test_edit_of_a_large_picture_is_scaled_to_the_side_limit(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGES_MAX_SIDE", "128")
    out = run(edit(origin, image=f"{origin}/huge.png"))
    assert (out["width"], out["height"]) == (128, 128)


@pytest.mark.parametrize(
    ("payload", "param", "code"),
    [
        ({"image": "{o}/corrupt.png"}, "image", "invalid_image"),
        ({"image": "{o}/page.html"}, "image", "unsupported_format"),
        ({"image": "{o}/drawing.svg"}, "image", "unsupported_format"),
        ({"image": "{o}/missing.png"}, "image", "media_fetch_failed"),
        ({"image": "ftp://example.com/a.png"}, "image", "invalid_url"),
        ({"image": "{o}/photo.png", "images": ["{o}/photo.png"]}, "image", "invalid_value"),
        ({"image": None, "images": ["{o}/photo.png", "{o}/corrupt.png"]}, "images.1", "invalid_image"),
        ({"image": None, "images": ["{o}/photo.png", "{o}/square.png"]}, "images", "invalid_value"),
        ({"image": None}, "image", "invalid_value"),
        ({"strength": 1.5}, "strength", "invalid_value"),
        ({"width": 64}, "height", "invalid_value"),
        ({"loras": [{"name": "style", "weight": 0.8}]}, "loras", "unsupported_parameter"),
    ],
)
def test_bad_edit_inputs_name_the_field(origin: str, payload: dict[str, Any], param: str, code: str) -> None:
    fields = {k: (v.replace("{o}", origin) if isinstance(v, str) else v) for k, v in payload.items()}
    if "images" in fields:
        fields["images"] = [url.replace("{o}", origin) for url in fields["images"]]
    job = {k: v for k, v in edit(origin, **fields).items() if v is not None}
    error = err(run(job))
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_too_large_and_too_many_pixels_name_the_field(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGES_MAX_INPUT_PIXELS", str(200 * 200))
    error = err(run({"task": "img-rmbg", "image": f"{origin}/huge.png"}))
    assert (error["param"], error["code"]) == ("image", "image_too_large")
    monkeypatch.setenv("MEDIA_MAX_IMAGE_MB", "0.0001")  # ~100 bytes
    error = err(run({"task": "img-upscale", "image": f"{origin}/photo.png"}))
    assert (error["param"], error["code"]) == ("image", "media_too_large")


def test_unknown_task_and_missing_image(origin: str) -> None:
    assert err(run({"task": "img-colorize", "image": f"{origin}/photo.png"}))["param"] == "task"
    assert err(run({"task": "img-rmbg"}))["param"] == "image"
    assert err(run({"task": "img-upscale", "image": f"{origin}/photo.png", "prompt": "x"}))["param"] == "prompt"


def test_one_step_turbo_settings_still_edit(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # sd-turbo locally runs 1 step; img2img runs int(steps * strength) of them, 0 at 0.8
    monkeypatch.setenv("IMAGES_DEFAULT_STEPS", "1")
    out = run({k: v for k, v in edit(origin).items() if k != "num_inference_steps"})
    assert "error" not in out, out["error"]
    assert out["num_inference_steps"] == 1
    assert "error" not in run(edit(origin, strength=0.0))


def test_edit_shares_the_txt2img_pipeline_when_the_model_is_the_same(origin: str) -> None:
    from handlers.images import edit as edit_module
    from handlers.images import engine

    assert "error" not in run({"prompt": "x", "num_inference_steps": 1})  # loads the txt2img engine
    edit_module._engine = None  # as a fresh worker whose first job was txt2img
    assert "error" not in run(edit(origin))
    edit_engine = edit_module.get_edit_engine()
    assert edit_engine.pipe.unet is engine.get_engine().pipe.unet  # one copy of the weights


class _EditPlusStandIn:
    """A Qwen-Image-Edit-Plus-like pipeline: pictures, true CFG, a transformer without guidance."""

    class transformer:
        class config:
            guidance_embeds = False
            patch_size = 2

    vae_scale_factor = 8
    config: ClassVar[dict[str, Any]] = {}

    def __call__(self, image: Any = None, prompt: str = "", negative_prompt: str | None = None,
                 true_cfg_scale: float = 4.0, height: int | None = None, width: int | None = None,
                 num_inference_steps: int = 50, guidance_scale: float | None = None) -> Any:  # fmt: skip
        raise NotImplementedError


def test_guidance_is_true_cfg_for_an_instruction_editor() -> None:
    from handlers.images.edit import EditEngine
    from handlers.images.schema import EditInput, Limits

    worker = EditEngine(_EditPlusStandIn(), "Qwen/Qwen-Image-Edit-2509")
    worker.multi_image = True
    pictures = [picture(100, 60), picture(40, 40)]
    plan = worker.plan_edit(EditInput(prompt="p", guidance_scale=4.0, strength=0.3), pictures, Limits())
    assert plan.kwargs["true_cfg_scale"] == 4.0 and "guidance_scale" not in plan.kwargs
    assert plan.kwargs["negative_prompt"] == " "  # true CFG acts only with a negative prompt
    assert len(plan.kwargs["image"]) == 2 and (plan.kwargs["width"], plan.kwargs["height"]) == (96, 64)
    assert plan.ignored == ["strength"] and plan.steps == 40  # the model card's steps
    default = worker.plan_edit(EditInput(prompt="p"), pictures[:1], Limits())
    assert "true_cfg_scale" not in default.kwargs and default.kwargs["negative_prompt"] == " "  # CFG 4.0 on
    off = worker.plan_edit(EditInput(prompt="p", guidance_scale=1.0), pictures[:1], Limits())
    assert off.kwargs["true_cfg_scale"] == 1.0 and "negative_prompt" not in off.kwargs


@pytest.mark.parametrize("case", load_contract("images")["url_cases"], ids=lambda case: case["name"])
def test_contract_url_cases(case: dict[str, Any], origin: str) -> None:
    import json

    out = run(json.loads(json.dumps(case["input"]).replace("{origin}", origin)))
    assert "error" not in out, out.get("error")
    assert_same_shape(out, case["output"])
    assert out["task"] == case["input"]["task"] and out["model"] == case["input"]["model"]
    assert decoded(out["images"][0]).format == out["output_format"].upper()
