"""Wire shapes of the async-job replies (a leaf module: the runner and the OpenAPI docs share it)."""

from __future__ import annotations

import msgspec


class RunPodJob(msgspec.Struct):
    id: str
    status: str


class EnqueueBody(msgspec.Struct):
    id: str
    object: str
    created: int
    status: str
    surface: str
    model: str
    endpoint_id: str
    runpod: RunPodJob
