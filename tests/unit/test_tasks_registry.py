"""app/tasks: every native task validates, prices and builds its worker input from its fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.billing.pricing import price_micro_usd, usd
from app.routing.loader import load_routing
from app.routing.schema import INFERENCE_TYPES, ModelRoute, RoutingConfig
from app.tasks.registry import TASKS
from app.tasks.spec import TaskSpec, Upload
from app.tasks.validation import convert_fields

ROOT = Path(__file__).resolve().parents[2]
PNG = Upload("png", 1000, (512, 512))
WAV = Upload("wav", 1000)
MP4 = Upload("mp4", 1000)


@pytest.fixture(scope="module")
def config() -> RoutingConfig:
    return load_routing(ROOT / "routing.yaml", env={}).config


def _route(config: RoutingConfig, spec: TaskSpec, model: str) -> ModelRoute:
    return config.surfaces[spec.surface].models[model]


def _run(
    config: RoutingConfig, task: str, fields: dict[str, Any], uploads: dict[str, list[Upload]] | None = None
) -> tuple[Any, list[tuple[str, str]]]:
    spec = TASKS[task]
    params, errors = convert_fields(spec.params, fields)
    if params is None:
        return None, errors
    return params, spec.check(params, uploads or {}, _route(config, spec, fields["model"]))


GOOD: dict[str, tuple[dict[str, Any], dict[str, list[Upload]]]] = {
    "txt2img": ({"model": "Flux1schnell", "prompt": "cat", "width": "512", "height": 512, "seed": -1, "steps": 4}, {}),
    "img2img": ({"model": "QwenImageEdit_Plus_NF4", "prompt": "blue", "steps": 20, "seed": 1}, {"image": [PNG]}),
    "img-rmbg": ({"model": "Ben2"}, {"image": [PNG]}),
    "img-upscale": ({"model": "RealESRGAN_x4plus"}, {"image": [PNG]}),
    "img2txt": ({"model": "Nanonets_Ocr_S_F16", "language": "en"}, {"image": [PNG]}),
    "txt2audio": ({"model": "Kokoro", "text": "Hello there.", "voice": "af_sky", "lang": "en-us", "speed": "1"}, {}),
    "txt2music": ({"model": "ACE-Step-v1.5-turbo", "caption": "lofi", "duration": "30", "inference_steps": 8}, {}),
    "txt2video": ({"model": "Ltx2_3_19B_Dist_INT8", "prompt": "waves", "width": 768, "height": 512, "frames": 97,
                   "fps": 24, "seed": -1}, {}),
    "img2video": ({"model": "Ltx2_19B_Dist_FP8", "prompt": "waves", "frames": 48, "fps": 24},
                  {"first_frame_image": [PNG]}),
    "aud2video": ({"model": "Ltx2_3_19B_Dist_INT8", "prompt": "singer", "frames": 48, "fps": 24}, {"audio": [WAV]}),
    "vid2txt": ({"model": "WhisperLargeV3", "video_url": "https://www.youtube.com/watch?v=x", "include_ts": "1"}, {}),
    "aud2txt": ({"model": "WhisperLargeV3", "audio_url": "https://x.com/i/spaces/1YqK", "include_ts": "false"}, {}),
    "videofile2txt": ({"model": "WhisperLargeV3", "include_ts": True}, {"video": [MP4]}),
    "audiofile2txt": ({"model": "WhisperLargeV3", "include_ts": "0"}, {"audio": [WAV]}),
    "txt2embedding": ({"model": "Bge_M3_INT8", "input": ["one", "two"]}, {}),
}


def test_fifteen_tasks_each_served_by_a_shipped_model(config: RoutingConfig) -> None:
    assert set(TASKS) == set(GOOD)
    for spec in TASKS.values():
        assert spec.inference_type in INFERENCE_TYPES[spec.surface]
        fields, _ = GOOD[spec.name]
        assert spec.inference_type in _route(config, spec, fields["model"]).inference_types


@pytest.mark.parametrize("task", sorted(GOOD))
def test_good_requests_pass_price_and_build_worker_input(config: RoutingConfig, task: str) -> None:
    fields, uploads = GOOD[task]
    params, errors = _run(config, task, fields, uploads)
    assert errors == []
    spec = TASKS[task]
    route = _route(config, spec, fields["model"])
    quantities = spec.quantities(params, uploads, route)
    assert price_micro_usd(route.pricing_rules, quantities) > 0
    urls = {name: [f"https://gw.example/v1/files/{name}{i}" for i in range(len(ups))] for name, ups in uploads.items()}
    job = spec.worker_input(params, route.upstream_model or fields["model"], urls)
    assert "webhook_url" not in job and "return_result_in_response" not in job
    for name in uploads:
        assert urls[name][0] in str(job)


def test_seed_minus_one_is_drawn_by_the_gateway(config: RoutingConfig) -> None:
    params, _ = _run(config, "txt2img", GOOD["txt2img"][0])
    seeds = {TASKS["txt2img"].worker_input(params, "m", {})["seed"] for _ in range(5)}
    assert all(0 <= seed < 2**32 for seed in seeds) and len(seeds) > 1


def test_every_bad_field_is_named(config: RoutingConfig) -> None:
    _, errors = _run(config, "txt2img", {"model": "Flux1schnell", "width": "wide", "height": 10**9, "steps": 0})
    assert [field for field, _ in errors] == ["prompt", "width", "height", "steps"]


def test_model_limits_apply(config: RoutingConfig) -> None:
    fields = {"model": "Flux1schnell", "prompt": "p", "width": 4096, "height": 100, "steps": 11, "guidance": 3}
    _, errors = _run(config, "txt2img", fields)
    assert [field for field, _ in errors] == ["width", "height", "steps", "guidance"]
    assert errors[0][1] == "The width must be between 256 and 2048."


def test_image_and_images_are_exclusive(config: RoutingConfig) -> None:
    fields = {"model": "QwenImageEdit_Plus_NF4", "prompt": "p"}
    _, errors = _run(config, "img2img", fields, {"image": [PNG], "images": [PNG, PNG]})
    assert errors == [("image", "Send either image or images[], not both.")]
    _, errors = _run(config, "img2img", fields, {})
    assert [f for f, _ in errors] == ["image"]
    _, errors = _run(config, "img2img", fields, {"images": [PNG] * 4})
    assert [f for f, _ in errors] == ["images"]


@pytest.mark.parametrize(
    ("fields", "uploads", "bad"),
    [
        ({"model": "Kokoro", "text": "hi", "voice": "nobody", "lang": "en-us"}, {}, "voice"),
        ({"model": "Kokoro", "text": "hi", "lang": "xx"}, {}, "lang"),
        ({"model": "Kokoro", "text": "hi", "mode": "voice_clone"}, {}, "mode"),
        ({"model": "Chatterbox", "text": "hi", "mode": "voice_clone"}, {}, "ref_audio"),
        ({"model": "Qwen3_TTS", "text": "hi", "mode": "voice_design"}, {}, "instruct"),
        ({"model": "Chatterbox", "text": "hi"}, {}, "mode"),
        ({"model": "Kokoro", "text": "hi", "speed": 3}, {}, "speed"),
    ],
)
def test_speech_modes_need_their_field(
    config: RoutingConfig, fields: dict[str, Any], uploads: dict[str, list[Upload]], bad: str
) -> None:
    _, errors = _run(config, "txt2audio", fields, uploads)
    assert bad in [field for field, _ in errors]


@pytest.mark.parametrize(
    ("task", "fields", "bad"),
    [
        ("vid2txt", {"video_url": "https://evil.example/v.mp4"}, "video_url"),
        ("vid2txt", {"video_url": "http://www.youtube.com/watch?v=x"}, "video_url"),
        ("vid2txt", {"video_url": "https://x.com/i/spaces/1YqK"}, "video_url"),
        ("aud2txt", {"audio_url": "https://x.com/user/status/1"}, "audio_url"),
        ("txt2music", {"caption": "c", "duration": 5}, "duration"),
        ("txt2music", {"caption": "c", "duration": 30, "timesignature": 5}, "timesignature"),
        ("txt2video", {"prompt": "p", "fps": 8}, "fps"),
        ("img2video", {"prompt": "p"}, "first_frame_image"),
        ("aud2video", {"prompt": "p"}, "audio"),
        ("txt2embedding", {"input": "x" * 100_000}, "input"),
        ("txt2embedding", {"input": []}, "input"),
    ],
)
def test_the_422_matrix(config: RoutingConfig, task: str, fields: dict[str, Any], bad: str) -> None:
    model = GOOD[task][0]["model"]
    _, errors = _run(config, task, {"model": model, "include_ts": True, **fields})
    assert bad in [field for field, _ in errors], errors


def test_oversized_input_image_is_named(config: RoutingConfig) -> None:
    huge = Upload("png", 1000, (5000, 300))
    _, errors = _run(config, "img-rmbg", {"model": "Ben2"}, {"image": [huge]})
    assert errors == [("image", "The image width may not be greater than 4096.")]


def test_task_prices_match_the_seeds(config: RoutingConfig) -> None:
    def price(task: str, fields: dict[str, Any], uploads: dict[str, list[Upload]] | None = None) -> float:
        spec = TASKS[task]
        params, errors = _run(config, task, fields, uploads)
        assert errors == []
        route = _route(config, spec, fields["model"])
        return usd(price_micro_usd(route.pricing_rules, spec.quantities(params, uploads or {}, route)))

    flux = {"model": "Flux1schnell", "prompt": "p", "width": 512, "height": 512, "steps": 4, "seed": -1}
    assert price("txt2img", flux) == 0.00136
    assert price("txt2audio", {"model": "Kokoro", "text": "x" * 1000, "speed": 2}) == 0.000385
    video = {"model": "Ltx2_19B_Dist_FP8", "prompt": "p", "width": 256, "height": 256, "frames": 48, "fps": 24}
    assert price("txt2video", video) == 0.001737
    whisper = {"model": "WhisperLargeV3", "include_ts": True, "duration_seconds": 300}
    assert price("audiofile2txt", whisper, {"audio": [WAV]}) == 0.003613


def test_model_defaults_fill_what_the_client_left_out(config: RoutingConfig) -> None:
    from app.tasks.common import with_model_defaults
    from app.tasks.video import Txt2Video

    route = config.surfaces["video"].models["Ltx2_3_19B_Dist_INT8"]
    params = with_model_defaults(Txt2Video(model="m", prompt="p", fps=30), route)
    assert (params.width, params.height, params.frames, params.fps, params.steps) == (768, 512, 121, 30, 8)
    assert params.guidance == 0.0 and params.seed is None  # seed: drawn later, never a default


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_ocr_json_format_is_held_to_its_shape_by_the_worker(config: RoutingConfig, fmt: str) -> None:
    """format=json asks the chat worker for constrained JSON; the worker's own parser accepts it."""
    from handlers.chat.schema import parse_job

    params, errors = _run(config, "img2txt", {**GOOD["img2txt"][0], "format": fmt}, GOOD["img2txt"][1])
    assert errors == []
    job = TASKS["img2txt"].worker_input(params, "nanonets/Nanonets-OCR-s", {"image": ["https://gw.example/f"]})
    parsed = parse_job(job)
    if fmt == "text":
        assert parsed.output is None
    else:
        assert parsed.output is not None and parsed.output.kind == "json_schema"
        assert parsed.output.schema is not None and parsed.output.schema["required"] == ["blocks"]
