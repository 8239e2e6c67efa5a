"""handlers/common/failures.py and the throttled progress reporter every worker shares."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from handlers.common.errors import decode_error
from handlers.common.failures import unexpected_failure
from handlers.common.progress import EMULATOR_PROGRESS_KEY, throttled

LOG = logging.getLogger("tests.failures")


class OutOfMemoryError(RuntimeError):
    """Named like torch's, which is what the check looks for."""


def _fail(exc: Exception) -> dict[str, Any]:
    try:
        raise exc
    except Exception as raised:
        return unexpected_failure(raised, LOG, work="Image generation", oom="Out of GPU memory; ask for less",
                                  code="generation_failed")


@pytest.mark.parametrize("exc", [OutOfMemoryError("boom"), RuntimeError("CUDA out of memory. Tried to allocate")])
def test_out_of_memory_says_what_to_send_instead(exc: Exception) -> None:
    error = decode_error(_fail(exc))
    assert error is not None
    assert (error["code"], error["message"]) == ("out_of_memory", "Out of GPU memory; ask for less")


def test_other_failures_name_only_the_type(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="tests.failures"):
        error = decode_error(_fail(ValueError("the prompt was: a secret lighthouse")))
    assert error is not None
    assert (error["type"], error["code"]) == ("server_error", "generation_failed")
    assert error["message"] == "Image generation failed (ValueError)"
    assert "lighthouse" not in caplog.text and "image generation failed: ValueError" in caplog.text


def test_progress_is_throttled_but_the_first_report_goes_out() -> None:
    seen: list[float] = []
    report = throttled({EMULATOR_PROGRESS_KEY: lambda update: seen.append(update["progress"])}, 0.2)
    report(10.04)
    report(20.0)  # within the interval: dropped
    time.sleep(0.25)
    report(30.0)
    assert seen == [10.0, 30.0]
