"""The speech worker's three images (Kokoro, Chatterbox, Qwen3-TTS) against their endpoint bodies,
through deploy/runpod/check_workers.py: each endpoint is checked against its own Dockerfile and
requirements file, and the rules catch the mistakes a second image invites."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("check_workers", ROOT / "deploy/runpod/check_workers.py")
assert SPEC and SPEC.loader
checks = importlib.util.module_from_spec(SPEC)
sys.modules["check_workers"] = checks  # dataclasses look their module up by name
SPEC.loader.exec_module(checks)
IMAGES = {"speech": "2.13.0", "speech-chatterbox": "2.6.0", "speech-qwen3": "2.10.0"}


@pytest.mark.parametrize(("surface", "torch"), IMAGES.items())
def test_each_endpoint_is_checked_against_its_own_image(surface: str, torch: str) -> None:
    worker = checks.Worker.load(ROOT, surface)
    assert worker.docker.args["TORCH_VERSION"] == worker.pins["torch"] == torch
    assert checks.check(worker) == []
    engine = {"speech": None, "speech-chatterbox": "chatterbox", "speech-qwen3": "qwen3_tts"}[surface]
    assert worker.docker.env.get("SPEECH_ENGINE") == engine


def test_the_chatterbox_and_qwen3_images_pin_their_packages() -> None:
    chatterbox = checks.Worker.load(ROOT, "speech-chatterbox").pins
    assert (chatterbox["chatterbox-tts"], chatterbox["torchaudio"], chatterbox["numpy"]) == ("0.1.7", "2.6.0", "1.26.4")
    qwen = checks.Worker.load(ROOT, "speech-qwen3").pins
    assert (qwen["qwen-tts"], qwen["transformers"], qwen["torchaudio"]) == ("0.1.1", "4.57.3", "2.10.0")
    assert "kokoro" not in chatterbox and "kokoro" not in qwen


def test_mistakes_in_a_second_image_are_caught() -> None:
    worker = checks.Worker.load(ROOT, "speech-chatterbox")
    low = copy.deepcopy(worker)
    low.endpoint["gpu"]["minCudaVersion"] = "12.4"  # torch's own CUDA, but the base image asks 12.8
    (problem,) = checks.check(low)
    assert "hosts with CUDA 12.4 are allowed; the image needs 12.8" in problem
    wrong_engine = copy.deepcopy(worker)
    wrong_engine.endpoint["env"]["SPEECH_ENGINE"] = "kokoro"
    (problem,) = checks.check(wrong_engine)
    assert "SPEECH_ENGINE=kokoro overrides the image's SPEECH_ENGINE=chatterbox" in problem
    mismatched = copy.deepcopy(worker)
    mismatched.pins["torchaudio"] = "2.7.0"
    (problem,) = checks.check(mismatched)
    assert "installs torchaudio 2.6.0, requirements.txt pins 2.7.0" in problem


def test_create_endpoints_knows_both_bodies() -> None:
    spec = importlib.util.spec_from_file_location("create_endpoints", ROOT / "deploy/runpod/create_endpoints.py")
    assert spec and spec.loader
    create = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(create)
    assert create.ENV_NAMES["speech-chatterbox"] == "RUNPOD_SPEECH_CLONE_ENDPOINT_ID"
    assert create.ENV_NAMES["speech-qwen3"] == "RUNPOD_SPEECH_DESIGN_ENDPOINT_ID"
    routing = (ROOT / "routing.yaml").read_text()
    for surface in ("speech-chatterbox", "speech-qwen3"):
        assert f"${{{create.ENV_NAMES[surface]}:-}}" in routing  # the variable routing.yaml reads
        body = create.body(surface, "ghcr.io/acme/", None, None)
        assert body["image"] == f"ghcr.io/acme/dryapi-{surface}:0.1.0" and "networkVolumes" not in body
    qwen = json.loads((ROOT / "deploy/runpod/speech-qwen3.json").read_text())["endpoint"]
    assert len(qwen["env"]["SPEECH_MODEL"].split(",")) == 3  # one checkpoint per mode
