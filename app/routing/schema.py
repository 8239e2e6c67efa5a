"""The routing.yaml schema. Unknown keys are errors: an operator's typo must not pass silently."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

Surface = Literal["chat", "images", "transcribe", "embeddings"]
SURFACES: tuple[Surface, ...] = ("chat", "images", "transcribe", "embeddings")
Mode = Literal["sync", "async"]

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class Upstream(_Strict, frozen=True):
    base_url: str = "https://api.runpod.ai/v2"
    api_key: str = ""
    # Seconds to wait for RunPod to accept a request or answer a status call.
    request_timeout_s: PositiveFloat = 30.0


class Policy(_Strict, frozen=True):
    """RunPod's per-job policy, in seconds here (RunPod takes milliseconds)."""

    execution_timeout_s: Annotated[int, msgspec.Meta(ge=5, le=7 * 86400)] = 600
    ttl_s: Annotated[int, msgspec.Meta(ge=10, le=7 * 86400)] = 86400
    low_priority: bool = False

    def to_runpod(self) -> dict[str, Any]:
        return {
            "executionTimeout": self.execution_timeout_s * 1000,
            "ttl": self.ttl_s * 1000,
            "lowPriority": self.low_priority,
        }


class ModelRoute(_Strict, frozen=True):
    endpoint_id: str = ""
    upstream_model: str | None = None
    aliases: list[str] = []
    local_endpoint: str | None = None
    base_url: str | None = None
    pass_through: list[str] = []
    owned_by: str = "dryapi"


class SurfaceConfig(_Strict, frozen=True):
    default_model: str | None = None
    mode: Mode = "sync"
    sync_timeout_s: PositiveFloat = 120.0
    policy: Policy = Policy()
    models: dict[str, ModelRoute] = {}


class LocalEndpoint(_Strict, frozen=True):
    handler: str
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 1
    env: dict[str, str] = {}


class LocalConfig(_Strict, frozen=True):
    endpoints: dict[str, LocalEndpoint] = {}


RequestCount = Annotated[int, msgspec.Meta(ge=1)]


class WindowLimits(_Strict, frozen=True):
    """Requests per minute and per UTC day; absent means no limit on that window."""

    rpm: RequestCount | None = None
    rpd: RequestCount | None = None


class TierLimits(WindowLimits, frozen=True):
    # A surface's own windows apply on top of the tier's overall ones.
    surfaces: dict[Surface, WindowLimits] = {}


class LimitsConfig(_Strict, frozen=True):
    # Per key, for GET /v1/jobs/* and job WebSocket opens, whatever the tier.
    jobs_rpm: RequestCount | None = None
    # A key whose tier is not listed here is unlimited.
    tiers: dict[str, TierLimits] = {}


class RoutingConfig(_Strict, frozen=True):
    upstream: Upstream = Upstream()
    surfaces: dict[Surface, SurfaceConfig] = {}
    local: LocalConfig = LocalConfig()
    # Per-key rate limit tiers (app/limits.py enforces them).
    limits: LimitsConfig = LimitsConfig()
