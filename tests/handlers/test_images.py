"""The images handler on tiny random diffusers pipelines (CPU, no hub).

Tests go through ``handler(job)`` and the real loading code; the pipelines are built
once per session by ``tests/handlers/tiny_models.py``.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from handlers.common.errors import decode_error
from handlers.common.progress import EMULATOR_PROGRESS_KEY
from handlers.images import engine
from handlers.images.handler import handler
from handlers.images.schema import ImagesInput, Limits
from tests.contracts.shape import assert_same_shape, load_contract
from tests.handlers.cancelling import cancel_after_first_progress
from tests.handlers.tiny_models import build_tiny_flux_pipeline, build_tiny_image_pipeline

pytestmark = pytest.mark.slow
_ENV = (  # a developer's or CI's own settings must not leak into these tests
    "IMAGES_DEVICE",
    "IMAGES_DTYPE",
    "IMAGES_VARIANT",
    "IMAGES_CPU_OFFLOAD",
    "IMAGES_MIN_SIDE",
    "IMAGES_MAX_SIDE",
    "IMAGES_MAX_STEPS",
    "IMAGES_DEFAULT_STEPS",
    "IMAGES_DEFAULT_GUIDANCE",
    "IMAGES_TRUE_CFG_SCALE",
    "IMAGES_MAX_INLINE_BYTES",
    "BUCKET_ENDPOINT_URL",
    "BUCKET_ACCESS_KEY_ID",
    "BUCKET_SECRET_ACCESS_KEY",
    "BUCKET_NAME",
)


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_image_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="session")
def tiny_flux(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Its transformer has no guidance embedding, like the real schnell: that selects the
    # distilled defaults (the name does not matter).
    return build_tiny_flux_pipeline(tmp_path_factory.mktemp("models") / "tiny-FLUX.1-schnell")


@pytest.fixture(autouse=True)
def _sd_model(tiny_sd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGES_MODEL", str(tiny_sd))
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def run(payload: Any, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    # The emulator's progress hook stands in for RunPod's (there is no job server here).
    job = {"id": "job-1", "input": payload, EMULATOR_PROGRESS_KEY: progress or (lambda update: None)}
    return asyncio.run(handler(job))


def decode(uri: str) -> tuple[str, bytes, Image.Image]:
    head, _, data = uri.partition(",")
    assert head.startswith("data:image/") and head.endswith(";base64"), head[:40]
    blob = base64.b64decode(data)
    return head[5:-7], blob, Image.open(io.BytesIO(blob))


def err(out: dict[str, Any]) -> dict[str, Any]:
    error = decode_error(out)
    assert error is not None, out
    return error


def small(**extra: Any) -> dict[str, Any]:
    return {"prompt": "a red fox", "width": 64, "height": 64, "num_inference_steps": 2, **extra}


@pytest.mark.parametrize("case", load_contract("images")["cases"], ids=lambda case: case["name"])
def test_contract_cases(case: dict[str, Any]) -> None:
    out = run(case["input"])
    if "error" in case:
        assert err(out)["type"] == case["error"]["type"]
        assert err(out)["param"] == case["error"]["param"]
        return
    assert "error" not in out, out.get("error")
    assert_same_shape(out, case["output"])
    assert len(out["images"]) == len(case["output"]["images"])
    assert out["model"] == case["input"]["model"]  # a single-model worker echoes the name
    assert out["image_url"] == out["images"][0]


@pytest.mark.parametrize(("fmt", "pil_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_output_formats_decode_at_the_requested_size(fmt: str, pil_format: str) -> None:
    out = run(small(output_format=fmt, width=72, height=64))
    mime, _, image = decode(out["images"][0])
    assert mime == f"image/{fmt}"
    assert image.format == pil_format
    assert image.size == (72, 64)
    assert out["output_format"] == fmt


def test_num_images_gives_distinct_images_with_consecutive_seeds() -> None:
    out = run(small(num_images=3, seed=10))
    blobs = [decode(uri)[1] for uri in out["images"]]
    assert len(blobs) == 3 and len(set(blobs)) == 3
    assert out["seed"] == 10 and out["seeds"] == [10, 11, 12]


def test_same_seed_same_bytes_and_other_seed_other_bytes() -> None:
    first = run(small(seed=1234))["images"]
    again = run(small(seed=1234))["images"]
    other = run(small(seed=1235))["images"]
    assert first == again
    assert first != other


def test_missing_seed_is_chosen_and_returned_for_replay() -> None:
    out = run(small())
    assert isinstance(out["seed"], int)
    assert run(small(seed=out["seed"]))["images"] == out["images"]


def test_size_rounds_to_the_model_step_and_defaults_to_native() -> None:
    out = run(small(width=70, height=99))  # SD: multiples of 8
    assert (out["width"], out["height"]) == (72, 96)
    assert decode(out["images"][0])[2].size == (72, 96)
    native = run({"prompt": "x", "num_inference_steps": 1})
    assert (native["width"], native["height"]) == (64, 64)  # unet sample_size 8 x VAE factor 8


def test_flux_pipeline_step_defaults_and_true_cfg(tiny_flux: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGES_MODEL", str(tiny_flux))
    out = run({"prompt": "a red fox", "width": 70, "height": 90, "seed": 3})
    assert (out["width"], out["height"]) == (64, 96)  # Flux packs 2x2 latents: multiples of 16
    assert decode(out["images"][0])[2].size == (64, 96)
    assert out["num_inference_steps"] == engine.DISTILLED_STEPS
    negative = run({"prompt": "a red fox", "width": 70, "height": 90, "seed": 3, "negative_prompt": "snow"})
    assert negative["images"] != out["images"]  # the negative prompt acts through true CFG
    assert "ignored" not in negative


def test_negative_prompt_and_guidance_reach_the_pipeline() -> None:
    base = run(small(seed=5, guidance_scale=7.5))["images"]
    assert run(small(seed=5, guidance_scale=7.5, negative_prompt="blurry"))["images"] != base
    assert run(small(seed=5, guidance_scale=2.0))["images"] != base


class _PlainPipeline:
    """A pipeline whose ``__call__`` has no negative prompt, guidance, batching or callback."""

    vae_scale_factor = 8

    def __init__(self) -> None:
        self.seeds: list[int] = []

    def __call__(
        self, prompt: str, width: int, height: int, num_inference_steps: int, generator: list[Any], output_type: str
    ) -> Any:
        self.seeds += [g.initial_seed() for g in generator]
        return type("Out", (), {"images": [Image.new("RGB", (width, height))]})


def test_inputs_the_pipeline_cannot_take_are_dropped_and_reported() -> None:
    worker = engine.ImageEngine(_PlainPipeline(), "plain")
    params = ImagesInput(prompt="p", negative_prompt="n", guidance_scale=3.0, num_images=2, seed=9)
    plan = worker.plan(params, Limits())
    assert plan.ignored == ["guidance_scale", "negative_prompt"]
    assert "negative_prompt" not in plan.kwargs and "guidance_scale" not in plan.kwargs
    images = worker.generate(plan)  # no batching: one call per image, seeds 9 and 10
    assert len(images) == 2 and worker.pipe.seeds == [9, 10]


def test_inline_cap_without_bucket_says_to_configure_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGES_MAX_INLINE_BYTES", "1000")
    out = run(small())
    assert err(out)["type"] == "server_error"
    assert err(out)["code"] == "result_too_large"
    assert "BUCKET_ENDPOINT_URL" in err(out)["message"]


class _FakeS3:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str) -> None:
        self.objects[f"{Bucket}/{Key}"] = (Body, ContentType)

    def generate_presigned_url(self, op: str, Params: dict[str, str], ExpiresIn: int) -> str:
        return f"https://bucket.example/{Params['Bucket']}/{Params['Key']}?expires={ExpiresIn}"


@pytest.fixture
def bucket_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)  # runpod's helper would write a local folder here on fallback
    monkeypatch.setenv("BUCKET_ENDPOINT_URL", "https://s3.example")
    yield tmp_path
    assert list(tmp_path.iterdir()) == []  # nothing ever touches the disk


def test_bucket_returns_presigned_urls(bucket_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runpod.serverless.utils import rp_upload

    fake = _FakeS3()
    monkeypatch.setattr(rp_upload, "get_boto_client", lambda *args: (fake, None))
    monkeypatch.setenv("BUCKET_NAME", "art")
    monkeypatch.setenv("IMAGES_MAX_INLINE_BYTES", "10")  # the inline cap does not apply to URLs
    out = run(small(num_images=2, output_format="webp"))
    assert all(url.startswith("https://bucket.example/art/job-1/") for url in out["images"])
    assert out["image_url"] == out["images"][0]
    assert len(fake.objects) == 2
    for body, content_type in fake.objects.values():
        assert content_type == "image/webp"
        assert Image.open(io.BytesIO(body)).size == (64, 64)


def test_bucket_without_credentials_fails_instead_of_writing_files(bucket_dir: Path) -> None:
    out = run(small())
    assert err(out)["code"] == "bucket_misconfigured"
    assert "BUCKET_ACCESS_KEY_ID" in err(out)["message"]


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"prompt": "x", "num_images": 0}, "num_images"),
        ({"prompt": "x", "num_images": 9}, "num_images"),
        ({"prompt": "x", "width": 10}, "width"),
        ({"prompt": "x", "height": 4096}, "height"),
        ({"prompt": "x", "num_inference_steps": 1000}, "num_inference_steps"),
        ({"prompt": "x", "seed": -1}, "seed"),
        ({"prompt": "x", "guidance_scale": "lots"}, "guidance_scale"),
        ({"prompt": "x", "output_format": "gif"}, "output_format"),
        ({"prompt": "x", "steps": 4}, "steps"),
        ({"prompt": ""}, "prompt"),
        ({"negative_prompt": "x"}, "prompt"),
        ("not an object", "input"),
    ],
)
def test_validation_errors_name_the_field(payload: Any, param: str) -> None:
    out = run(payload)
    assert err(out)["type"] == "invalid_request_error"
    assert err(out)["param"] == param
    assert err(out)["message"]


def test_progress_is_reported_from_the_step_callback() -> None:
    updates: list[dict[str, Any]] = []
    run(small(num_inference_steps=3), updates.append)
    values = [update["progress"] for update in updates]
    assert values and values == sorted(values)
    assert 0 < values[0] < values[-1] == 95.0


def test_prompts_are_never_logged(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    marker = "zebracornmarker"
    run(small(prompt=" ".join([marker] * 50), negative_prompt=marker, guidance_scale=3.0))  # truncated
    captured = capfd.readouterr()
    assert marker not in captured.out + captured.err + caplog.text


def test_a_model_that_cannot_load_is_a_server_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGES_MODEL", str(tmp_path / "missing-model"))
    out = run(small())
    assert err(out)["type"] == "server_error"
    assert err(out)["code"] == "model_load_failed"


def test_round_side() -> None:
    assert engine.round_side(1000, 16, 64, 2048) == 1008
    assert engine.round_side(30, 16, 64, 2048) == 64
    assert engine.round_side(5000, 16, 64, 2040) == 2032


class _StandInPipeline:
    """A diffusers-like pipeline: a config (model_index.json) and a ``__call__`` with defaults."""

    def __init__(self, config: dict[str, Any], name_or_path: str = "") -> None:
        self.config = config
        self.name_or_path = name_or_path

    def __call__(self, prompt: str, num_inference_steps: int = 50, guidance_scale: float = 4.0) -> Any:
        raise NotImplementedError


def test_defaults_come_from_the_loaded_model_not_its_name(tiny_flux: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # FLUX.2-klein: model_index.json says is_distilled -> 4 steps, no CFG (was 25 steps at 4.0)
    klein = engine.model_defaults(_StandInPipeline({"is_distilled": True}), "some/klein")
    assert (klein.steps, klein.guidance) == (engine.DISTILLED_STEPS, 1.0)
    # Z-Image-Turbo: the config cannot say so; its model card's 9 steps, guidance 0 (was 4)
    turbo = engine.model_defaults(_StandInPipeline({}, "Tongyi-MAI/Z-Image-Turbo"), "Tongyi-MAI/Z-Image-Turbo")
    assert (turbo.steps, turbo.guidance) == (9, 0.0)
    # A name that merely looks distilled changes nothing: the pipeline's own defaults stand.
    plain = engine.model_defaults(_StandInPipeline({}, "me/my-turbo-lcm-schnell"), "me/my-turbo-lcm-schnell")
    assert (plain.steps, plain.guidance) == (50, None)
    # FLUX.1-schnell (a transformer without guidance_embeds, whatever its directory is called)
    renamed = tiny_flux.parent / "tiny-flux-renamed"
    if not renamed.exists():
        renamed.symlink_to(tiny_flux, target_is_directory=True)
    monkeypatch.setenv("IMAGES_MODEL", str(renamed))
    worker = engine.get_engine()
    assert (worker.defaults.steps, worker.defaults.guidance) == (engine.DISTILLED_STEPS, 0.0)
    plan = worker.plan(ImagesInput(prompt="p"), Limits.from_env())
    assert plan.kwargs["max_sequence_length"] == engine.SCHNELL_MAX_SEQUENCE_LENGTH == 256
    assert plan.kwargs["guidance_scale"] == 0.0 and plan.steps == engine.DISTILLED_STEPS


def test_a_standard_model_runs_its_pipelines_defaults() -> None:
    worker = engine.get_engine()  # the tiny StableDiffusionPipeline
    plan = worker.plan(ImagesInput(prompt="p"), Limits.from_env())
    assert plan.steps == 50 and "guidance_scale" not in plan.kwargs and "max_sequence_length" not in plan.kwargs


def test_a_cancelled_job_stops_between_denoising_steps() -> None:
    updates = asyncio.run(cancel_after_first_progress(handler, small(num_inference_steps=6)))
    assert len(updates) == 1  # step 2's check ended the pipeline call
