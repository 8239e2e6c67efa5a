"""deploy/runpod/check_workers.py: the repository's images and endpoint bodies agree, and
each rule catches the mistake it exists for (the defects found in the images, verbatim)."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("check_workers", ROOT / "deploy/runpod/check_workers.py")
assert SPEC and SPEC.loader
checks = importlib.util.module_from_spec(SPEC)
sys.modules["check_workers"] = checks  # dataclasses look their module up by name
SPEC.loader.exec_module(checks)


def worker(dockerfile: str, requirements: dict[str, str], endpoint: dict[str, Any]) -> Any:
    return checks.Worker("w", checks.parse_dockerfile(textwrap.dedent(dockerfile)), requirements, endpoint)


GOOD_ENDPOINT = {"env": {"RUNPOD_LOG_LEVEL": "INFO"}, "gpu": {"pools": ["ADA_24"], "minCudaVersion": "13.0"}}
TORCH_IMAGE = """
    ARG CUDA_IMAGE=nvidia/cuda:13.0.2-base-ubuntu24.04
    FROM ${CUDA_IMAGE}
    ARG TORCH_VERSION=2.13.0
    ARG TORCH_INDEX=https://pypi.org/simple
    ENV RUNPOD_LOG_LEVEL=INFO \\
        HF_HOME=/runpod-volume/huggingface
    RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
"""


@pytest.mark.parametrize("surface", checks.SURFACES)
def test_the_repository_passes(surface: str) -> None:
    assert checks.check(checks.Worker.load(ROOT, surface)) == []


def test_main_reports_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert checks.main([]) == 0 and capsys.readouterr().out.startswith("ok:")


def test_a_good_torch_image_passes() -> None:
    assert checks.check(worker(TORCH_IMAGE, {"torch": "2.13.0"}, GOOD_ENDPOINT)) == []


def test_one_pattern_per_exclude() -> None:
    old = 'hf download "$BAKED_MODEL" --local-dir "$CHAT_BAKED_DIR" --exclude "original/*" "*.pth" && echo ok'
    (problem,) = checks.hf_download_problems(old)
    assert "'*.pth' is read as a file name" in problem
    fixed = 'hf download "$M" --local-dir /models --exclude "original/*" --exclude "*.pth"; hf download x a.json'
    assert checks.hf_download_problems(fixed) == []


def test_where_weights_live_is_the_images_decision() -> None:
    endpoint = {**GOOD_ENDPOINT, "env": {"RUNPOD_LOG_LEVEL": "INFO", "HF_HOME": "/runpod-volume/huggingface"}}
    (problem,) = checks.check(worker(TORCH_IMAGE, {"torch": "2.13.0"}, endpoint))
    assert "HF_HOME" in problem and "image's decision" in problem


def test_a_baked_image_and_an_endpoint_overriding_its_cache() -> None:
    baked = """
        FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
        ARG BAKE_MODEL=1
        ENV RUNPOD_LOG_LEVEL=INFO MODEL=large-v3
        ENV HF_HOME=${BAKE_MODEL:+/opt/huggingface}
        ENV HF_HOME=${HF_HOME:-/runpod-volume/huggingface} \\
            HF_HUB_OFFLINE=${BAKE_MODEL:+1}
    """
    parsed = checks.parse_dockerfile(textwrap.dedent(baked))
    assert (parsed.env["HF_HOME"], parsed.env["HF_HUB_OFFLINE"]) == ("/opt/huggingface", "1")
    endpoint = {"env": {"RUNPOD_LOG_LEVEL": "INFO", "MODEL": "base"}, "gpu": {"minCudaVersion": "12.8"}}
    (problem,) = checks.check(worker(baked, {}, endpoint))
    assert "MODEL=base overrides the image's MODEL=large-v3" in problem


def test_log_level_must_hide_outputs() -> None:
    endpoint = {**GOOD_ENDPOINT, "env": {"RUNPOD_LOG_LEVEL": "DEBUG"}}
    problems = checks.check(worker(TORCH_IMAGE, {"torch": "2.13.0"}, endpoint))
    assert "w: the endpoint must set RUNPOD_LOG_LEVEL to INFO or above, not 'DEBUG'" in problems


def test_cuda_floor_must_cover_the_image() -> None:
    endpoint = {"env": {"RUNPOD_LOG_LEVEL": "INFO"}, "gpu": {"allowedCudaVersions": ["12.8", "13.0"]}}
    (problem,) = checks.check(worker(TORCH_IMAGE, {"torch": "2.13.0"}, endpoint))
    assert "CUDA 12.8 are allowed; the image needs 13.0" in problem
    unset = {"env": {"RUNPOD_LOG_LEVEL": "INFO"}, "gpu": {"pools": ["ADA_24"]}}
    assert "minCudaVersion is unset" in checks.check(worker(TORCH_IMAGE, {"torch": "2.13.0"}, unset))[0]


def test_the_old_cu128_index_is_flagged() -> None:
    old = TORCH_IMAGE.replace("13.0.2-base", "12.8.1-cudnn-runtime").replace(
        "https://pypi.org/simple", "https://download.pytorch.org/whl/cu128"
    )
    endpoint = {"env": {"RUNPOD_LOG_LEVEL": "INFO"}, "gpu": {"allowedCudaVersions": ["12.8", "12.9"]}}
    (problem,) = checks.check(worker(old, {"torch": "2.13.0"}, endpoint))
    assert "torch 2.13.0 is not known to be on https://download.pytorch.org/whl/cu128" in problem


def test_ctranslate2_needs_cuda_12() -> None:
    image = "FROM ubuntu:24.04\nENV RUNPOD_LOG_LEVEL=INFO\n"
    low = {"env": {"RUNPOD_LOG_LEVEL": "INFO"}, "gpu": {"minCudaVersion": "11.8"}}
    (problem,) = checks.check(worker(image, {"ctranslate2": "4.8.5"}, low))
    assert "ctranslate2 4.8.5 needs CUDA 12.0" in problem


def test_pins(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("# comment\nvllm==0.33.0\naiohttp[speedups]==3.14.5  # extras are fine\n")
    assert checks.requirements(good) == {"vllm": "0.33.0", "aiohttp": "3.14.5"}
    loose = tmp_path / "loose.txt"
    loose.write_text("torch>=2.13\n")
    with pytest.raises(ValueError, match="not pinned"):
        checks.requirements(loose)
    (problem,) = checks.check(worker(TORCH_IMAGE, {"torch": "2.14.0"}, GOOD_ENDPOINT))
    assert "installs torch 2.13.0, requirements.txt pins 2.14.0" in problem
