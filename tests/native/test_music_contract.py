"""The gateway's side of the music contract (tests/contracts/music.json).

The handler tests run every case through the real worker; here the same cases are checked
from the gateway's end: each example job input is exactly what ``app/tasks/music.py`` builds
from the native request, and every field the gateway can send passes the worker's input
schema. The outputs reach ``result_url`` in tests/handlers/test_music_e2e.py.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from app.tasks.music import TXT2MUSIC, Txt2Music
from handlers.music.schema import MusicInput
from tests.contracts.shape import load_contract

CASES = [case for case in load_contract("music")["cases"] if "output" in case]


def _native(job: dict[str, Any]) -> Txt2Music:
    """The native request a client would have sent for this job (the model slug instead of the id)."""
    fields = {k: v for k, v in job.items() if k not in ("task", "model")}
    return msgspec.convert(fields | {"model": "ACE-Step-v1.5-turbo"}, Txt2Music)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case["name"])
def test_the_gateway_builds_the_example_job_inputs(case: dict[str, Any]) -> None:
    job = case["input"]
    assert TXT2MUSIC.worker_input is not None
    built = TXT2MUSIC.worker_input(_native(job), job["model"], {})
    assert built == job


def test_every_field_the_gateway_sends_is_one_the_worker_reads() -> None:
    native = Txt2Music(
        model="ACE-Step-v1.5-turbo", caption="x", duration=30, inference_steps=8, guidance_scale=7, seed=-1,
        format="flac", lyrics="[verse]\nla", bpm=120, keyscale="C major", timesignature=6, vocal_language="en",
    )  # fmt: skip
    assert TXT2MUSIC.worker_input is not None
    job = TXT2MUSIC.worker_input(native, "ACE-Step/acestep-v15-xl-turbo-diffusers",
                                 {"reference_audio": ["https://gateway.example/v1/files/f1?sig=s"]})  # fmt: skip
    parsed = msgspec.convert(job, MusicInput)  # unknown keys would be refused by the worker
    assert parsed.reference_audio == "https://gateway.example/v1/files/f1?sig=s"
    assert parsed.seed is not None and 0 <= parsed.seed < 2**32  # -1 is drawn by the gateway
