"""handlers/common/serve.py: a worker started on RunPod keeps the SDK from logging payloads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_LEVEL = (
    "from handlers.common.serve import quiet_sdk_logs; quiet_sdk_logs(); import runpod; "
    "from runpod.serverless.modules.rp_logger import RunPodLogger; print(RunPodLogger().level)"
)


@pytest.mark.process
@pytest.mark.parametrize(("given", "expected"), [(None, "INFO"), ("WARN", "WARN")])
def test_the_sdk_logs_at_info_unless_the_operator_says(given: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RUNPOD_LOG_LEVEL", "RUNPOD_DEBUG_LEVEL")}
    if given is not None:
        env["RUNPOD_LOG_LEVEL"] = given
    level = subprocess.run([sys.executable, "-c", _LEVEL], env=env, capture_output=True, text=True, check=True,
                           timeout=60).stdout.strip().splitlines()[-1]
    assert level == expected
