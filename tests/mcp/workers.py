"""A worker slow enough that a tool's wait always ends before its job does."""

from __future__ import annotations

import time
from typing import Any

from tests.gateway.workers import embeddings

DELAY_S = 0.5


def slow_embeddings(job: dict[str, Any]) -> Any:
    time.sleep(DELAY_S)
    return embeddings(job)
