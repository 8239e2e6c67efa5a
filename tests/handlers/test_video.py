"""The video handler on a tiny random LTX pipeline (CPU, no hub).

Tests go through ``handler(job)`` and the real loading code; the pipeline is built once per
session by ``tests/handlers/tiny_models.py`` and frame images come from a loopback server
allowlisted through ``MEDIA_FETCH_ALLOWLIST``. Every MP4 is decoded back with PyAV.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from handlers.common.errors import decode_error
from handlers.common.progress import EMULATOR_PROGRESS_KEY
from handlers.video.engine import frames_to_generate, round_side
from handlers.video.frames import fit
from handlers.video.handler import handler
from handlers.video.pipeline import weight_storage
from tests.contracts.shape import assert_same_shape, load_contract
from tests.handlers.cancelling import cancel_after_first_progress
from tests.handlers.static_files import static_server
from tests.handlers.tiny_models import build_tiny_ltx_pipeline

_ENV = (  # a developer's or CI's own settings must not leak into these tests
    "VIDEO_DEVICE", "VIDEO_DTYPE", "VIDEO_WEIGHTS", "VIDEO_CPU_OFFLOAD", "VIDEO_VAE_TILING", "VIDEO_MIN_SIDE",
    "VIDEO_MAX_SIDE", "VIDEO_MIN_FRAMES", "VIDEO_MAX_FRAMES", "VIDEO_MIN_FPS", "VIDEO_MAX_FPS", "VIDEO_MAX_STEPS",
    "VIDEO_MAX_INLINE_BYTES", "VIDEO_DEFAULT_FRAMES", "VIDEO_DEFAULT_FPS", "VIDEO_DEFAULT_STEPS",
    "VIDEO_DEFAULT_GUIDANCE", "VIDEO_CRF", "VIDEO_X264_PRESET", "BUCKET_ENDPOINT_URL",
)


def _png(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def tiny_ltx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_ltx_pipeline(tmp_path_factory.mktemp("models") / "tiny-ltx")


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    files = {
        "/first.png": (_png((80, 48), (220, 30, 30)), "image/png"),
        "/last.png": (_png((64, 64), (30, 30, 220)), "image/png"),
        "/broken.png": (_png((64, 64), (0, 0, 0))[:60], "image/png"),  # a PNG cut short
        "/page.html": (b"<!doctype html><p>not an image</p>", "text/html"),
    }
    with static_server(files) as url:
        yield url


@pytest.fixture(autouse=True)
def _environment(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    # Validation tests never reach the model: they must fail before anything loads.
    monkeypatch.setenv("VIDEO_MODEL", "no-model-needed")
    monkeypatch.setenv("MEDIA_FETCH_ALLOWLIST", origin.removeprefix("http://"))


@pytest.fixture
def ltx(tiny_ltx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEO_MODEL", str(tiny_ltx))


def run(payload: Any, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    job = {"id": "job-1", "input": payload, EMULATOR_PROGRESS_KEY: progress or (lambda update: None)}
    return asyncio.run(handler(job))


def err(out: dict[str, Any]) -> dict[str, Any]:
    error = decode_error(out)
    assert error is not None, str(out)[:300]
    return error


def small(**extra: Any) -> dict[str, Any]:
    return {"task": "txt2video", "prompt": "a red fox", "width": 64, "height": 64, "frames": 9, "fps": 8,
            "steps": 2, "seed": 1, **extra}


def decode_mp4(out: dict[str, Any]) -> tuple[list[Any], Any]:
    """(frames as RGB arrays, the video stream) of the output's only file."""
    assert "error" not in out, out.get("error")
    (file,) = out["files"]
    assert file["content_type"] == "video/mp4"
    blob = base64.b64decode(file["data"])
    with av.open(io.BytesIO(blob)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return frames, (stream.codec_context.name, stream.average_rate, stream.width, stream.height)


@pytest.mark.slow
@pytest.mark.usefixtures("ltx")
def test_txt2video_mp4_has_the_requested_frames_size_and_fps() -> None:
    out = run(small(width=96, height=64, frames=12, fps=12))
    frames, (codec, rate, width, height) = decode_mp4(out)
    assert codec == "h264"
    assert len(frames) == 12  # 17 generated (8k + 1), cut to what was asked
    assert (width, height) == (96, 64) and frames[0].shape == (64, 96, 3)
    assert rate == Fraction(12)
    assert out["duration_s"] == 1.0
    assert (out["frames"], out["fps"], out["width"], out["height"], out["seed"]) == (12, 12, 96, 64, 1)


@pytest.mark.slow
@pytest.mark.usefixtures("ltx")
def test_progress_reports_every_step_with_a_decodable_preview() -> None:
    updates: list[dict[str, Any]] = []
    decode_mp4(run(small(steps=3), updates.append))
    steps = [u["progress"] for u in updates if 0 < u["progress"] <= 90]
    # The first and the last step always report; those between at most every 0.5 s.
    assert steps[0] == 30.0 and steps[-1] == 90.0 and set(steps) <= {30.0, 60.0, 90.0}
    assert updates[0]["progress"] == 0.0 and updates[-1]["progress"] == 95.0
    previews = [u["preview"] for u in updates if "preview" in u]
    assert previews, updates
    head, _, data = previews[0].partition(",")
    assert head == "data:image/jpeg;base64"
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    assert image.format == "JPEG" and image.size == (64, 64)


@pytest.mark.slow
@pytest.mark.usefixtures("ltx")
def test_same_seed_same_video_other_seed_other_video() -> None:
    first, again, other = run(small(seed=5)), run(small(seed=5)), run(small(seed=6))
    assert first["files"] == again["files"]
    assert first["files"] != other["files"]


@pytest.mark.slow
@pytest.mark.usefixtures("ltx")
def test_img2video_starts_from_the_first_frame_image(origin: str) -> None:
    out = run(small(task="img2video", first_frame_image=f"{origin}/first.png", frames=9))
    frames, (_, _, width, height) = decode_mp4(out)
    assert len(frames) == 9 and (width, height) == (64, 64)


@pytest.mark.slow
@pytest.mark.usefixtures("ltx")
def test_img2video_with_a_last_frame_uses_the_conditioning_pipeline(origin: str) -> None:
    out = run(small(task="img2video", first_frame_image=f"{origin}/first.png",
                    last_frame_image=f"{origin}/last.png", frames=17))
    frames, _ = decode_mp4(out)
    assert len(frames) == 17


@pytest.mark.slow
@pytest.mark.usefixtures("ltx")
def test_sizes_round_to_the_model_step() -> None:
    out = run(small(width=100, height=70))  # LTX: multiples of 32
    _, (_, _, width, height) = decode_mp4(out)
    assert (width, height) == (out["width"], out["height"]) == (96, 64)


@pytest.mark.slow
@pytest.mark.usefixtures("ltx")
@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"first_frame_image": "/broken.png"}, "first_frame_image", "invalid_image"),
        ({"first_frame_image": "/page.html"}, "first_frame_image", "unsupported_format"),
        ({"first_frame_image": "/missing.png"}, "first_frame_image", "media_fetch_failed"),
        ({"first_frame_image": "/first.png", "last_frame_image": "/broken.png"}, "last_frame_image", "invalid_image"),
    ],
)
def test_bad_frame_images_name_the_field(origin: str, fields: dict[str, str], param: str, code: str) -> None:
    out = run(small(task="img2video", **{k: origin + v for k, v in fields.items()}))
    error = err(out)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


@pytest.mark.slow
@pytest.mark.usefixtures("ltx")
def test_aud2video_on_a_model_without_audio_conditioning_names_task(origin: str) -> None:
    error = err(run(small(task="aud2video", audio=f"{origin}/first.png")))
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "task", "unsupported_task")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"frames": 0}, "frames"),
        ({"frames": 100_000}, "frames"),
        ({"fps": 500}, "fps"),
        ({"width": 10}, "width"),
        ({"height": 99_999}, "height"),
        ({"steps": 1000}, "steps"),
        ({"prompt": ""}, "prompt"),
        ({"task": "vid2vid"}, "task"),
        ({"seed": -1}, "seed"),
        ({"guidance": "high"}, "guidance"),
        ({"colour": "red"}, "colour"),
        ({"task": "img2video"}, "first_frame_image"),
        ({"task": "aud2video"}, "audio"),
        ({"first_frame_image": "https://example.com/a.png"}, "first_frame_image"),
    ],
)
def test_bad_inputs_name_the_field_before_anything_loads(fields: dict[str, Any], param: str) -> None:
    error = err(run(small(**fields)))
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_frames_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEO_MAX_FRAMES", "24")
    error = err(run(small(frames=25)))
    assert error["param"] == "frames" and "24" in error["message"]


@pytest.mark.slow
@pytest.mark.usefixtures("ltx")
def test_cancelled_job_stops_at_the_next_step() -> None:
    updates = asyncio.run(cancel_after_first_progress(handler, small(steps=50)))
    assert all(u["progress"] < 90 for u in updates)


@pytest.mark.slow
@pytest.mark.usefixtures("ltx")
def test_inline_cap_asks_for_a_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEO_MAX_INLINE_BYTES", "100")
    error = err(run(small()))
    assert (error["type"], error["code"]) == ("server_error", "result_too_large")


@pytest.mark.slow
@pytest.mark.usefixtures("ltx")
@pytest.mark.parametrize("case", load_contract("video")["cases"], ids=lambda case: case["name"])
def test_contract_cases(case: dict[str, Any], origin: str) -> None:
    payload = {k: (v.replace("{origin}", origin) if isinstance(v, str) else v) for k, v in case["input"].items()}
    out = run(payload)
    if "error" in case:
        assert {k: err(out)[k] for k in ("type", "param")} == case["error"]
        return
    decode_mp4(out)
    assert_same_shape(out, case["output"])


def test_frame_and_side_rounding() -> None:
    assert [frames_to_generate(n, 8) for n in (1, 8, 9, 10, 97, 120, 121)] == [1, 9, 9, 17, 97, 121, 121]
    assert round_side(500, 32, 64, 1920) == 512
    assert round_side(10, 32, 64, 1920) == 64
    assert round_side(5000, 32, 64, 1920) == 1920


@pytest.mark.parametrize(
    ("name", "device", "wanted", "storage"),
    [
        ("Ltxv_13B_0_9_8_Distilled_FP8", "cuda", "", "fp8"),
        ("org/ltx-video-fp8", "cuda", "auto", "fp8"),
        ("Ltxv_13B_0_9_8_Distilled_FP8", "cpu", "", "native"),  # fp8 storage needs a GPU
        ("Ltx2_3_19B_Dist_INT8", "cuda", "", "native"),  # no INT8 kernels here
        ("Lightricks/LTX-Video-0.9.8-13B-distilled", "cuda", "fp8", "fp8"),
        ("Lightricks/LTX-Video-0.9.8-13B-distilled", "cuda", "", "native"),
        ("sfp8x", "cuda", "", "native"),  # only a separate word counts
    ],
)
def test_weight_storage_follows_the_model_id(
    name: str, device: str, wanted: str, storage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDEO_WEIGHTS", wanted)
    assert weight_storage(name, device) == storage


@pytest.mark.slow
@pytest.mark.usefixtures("ltx")
def test_prompts_and_links_are_not_logged(
    origin: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    run(small(prompt="zebra crossing a glacier", negative_prompt="purple fog"))
    run(small(task="img2video", prompt="zebra crossing a glacier", first_frame_image=f"{origin}/broken.png"))
    printed = "".join(capfd.readouterr())
    for secret in ("zebra", "purple fog", "broken.png"):
        assert secret not in caplog.text and secret not in printed


def test_frame_images_are_cropped_to_the_video_aspect_not_stretched() -> None:
    wide = Image.new("RGB", (300, 100), (0, 0, 255))
    wide.paste((255, 0, 0), (100, 0, 200, 100))  # a red middle third between blue sides
    fitted = fit(wide, 64, 64)
    assert fitted.size == (64, 64)
    for x in (2, 61):  # stretched, the edges would be blue
        red, _, blue = fitted.getpixel((x, 32))
        assert red > 240 and blue < 15


@pytest.mark.slow
def test_a_timestep_conditioned_vae_decodes_at_lightricks_settings(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers.video import engine
    from handlers.video.schema import Limits, VideoInput

    directory = build_tiny_ltx_pipeline(tmp_path_factory.mktemp("models") / "tiny-ltx-091", timestep_vae=True)
    monkeypatch.setenv("VIDEO_MODEL", str(directory))
    plan = engine.get_engine().plan(VideoInput(prompt="a fox"), Limits())
    assert (plan.kwargs["decode_timestep"], plan.kwargs["decode_noise_scale"]) == (0.05, 0.025)
    updates: list[dict[str, Any]] = []
    frames, _ = decode_mp4(run(small(steps=2), updates.append))
    assert len(frames) == 9
    assert any("preview" in u for u in updates)  # the preview passes the VAE its timestep
