"""The routing.yaml schema. Unknown keys are errors: an operator's typo must not pass silently."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

Surface = Literal["chat", "images", "transcribe", "embeddings", "speech", "music", "video"]
SURFACES: tuple[Surface, ...] = ("chat", "images", "transcribe", "embeddings", "speech", "music", "video")
Mode = Literal["sync", "async"]

# The native task vocabulary as the models catalogue spells it (reference §4.1.6), per surface:
# a model may list only the inference types its surface's worker can run.
INFERENCE_TYPES: dict[Surface, tuple[str, ...]] = {
    "images": ("txt2img", "img2img", "img-rmbg", "img-upscale"),
    "chat": ("img2txt",),
    "transcribe": ("video2text", "audio2text", "video_file2text", "audio_file2text"),
    "embeddings": ("txt2embedding",),
    "speech": ("txt2audio",),
    "music": ("txt2music",),
    "video": ("txt2video", "img2video", "aud2video"),
}

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]


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


InfoValue = str | int | float | bool | list[int | float | str]


class ModelInfo(_Strict, frozen=True):
    """``info`` as the models catalogue publishes it. The keys inside are an open set (reference
    §4.1.4); the ones the gateway knows (``min_width``, ``max_steps``, ...) are enforced."""

    limits: dict[str, InfoValue] = {}
    features: dict[str, bool] = {}
    defaults: dict[str, InfoValue] = {}


class Lora(_Strict, frozen=True):
    name: str
    display_name: str = ""


class Voice(_Strict, frozen=True):
    slug: str
    name: str = ""
    gender: Literal["male", "female"] | None = None


class Language(_Strict, frozen=True):
    slug: str
    name: str = ""
    voices: list[Voice] = []


# What a price can scale with. ``steps`` is a task's step count (``inference_steps`` for music);
# ``seconds`` is requested output length, ``media_seconds`` the length of input media.
Quantity = Literal[
    "pixels",
    "steps",
    "inference_steps",
    "images",
    "characters",
    "seconds",
    "frames",
    "media_seconds",
    "input_tokens",
    "output_tokens",
    "tokens",
    "output_chars",
    "speed",
]
QUANTITIES: tuple[str, ...] = Quantity.__args__  # type: ignore[attr-defined]


class PricingRule(_Strict, frozen=True):
    """``usd`` is the price of the reference request; each ``per`` quantity scales it linearly
    (price * value / reference), each ``inverse`` one inversely (TTS speed: 2.0x costs half).
    A rule without ``per`` is a flat price per request."""

    usd: NonNegativeFloat
    per: dict[Quantity, PositiveFloat] = {}
    inverse: dict[Quantity, PositiveFloat] = {}
    minimum_usd: NonNegativeFloat = 0.0


class EndpointRef(_Strict, frozen=True):
    """One RunPod endpoint of a model that several serve; ``name`` is what OpenRouter's
    ``provider`` preferences (order/only/ignore) and the response's ``provider`` call it."""

    id: Annotated[str, msgspec.Meta(min_length=1)]
    name: str | None = None
    weight: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    region: str | None = None
    gpu: str | None = None

    @property
    def provider(self) -> str:
        return self.name or self.id


class Modalities(_Strict, frozen=True):
    input: list[str] = msgspec.field(default_factory=lambda: ["text"])
    output: list[str] = msgspec.field(default_factory=lambda: ["text"])


class ModelRoute(_Strict, frozen=True):
    # One endpoint (``endpoint_id``) or several (``endpoints``), not both (loader checks).
    endpoint_id: str = ""
    endpoints: list[EndpointRef] = []
    upstream_model: str | None = None
    aliases: list[str] = []
    local_endpoint: str | None = None
    base_url: str | None = None
    pass_through: list[str] = []
    owned_by: str = "dryapi"
    # The native catalogue (GET /api/v1/client/models) and its validation. A model with no
    # inference_types serves only the OpenAI-compatible routes.
    name: str | None = None
    inference_types: list[str] = []
    info: ModelInfo = ModelInfo()
    loras: list[Lora] = []
    languages: list[Language] = []
    # One rule, or a list of rules whose prices add (app/billing/pricing.py).
    pricing: PricingRule | list[PricingRule] | None = None
    # OpenRouter's model object (GET /api/v1/models); absent keys get per-surface defaults.
    description: str = ""
    context_length: Annotated[int, msgspec.Meta(ge=1)] | None = None
    modalities: Modalities | None = None
    supported_parameters: list[str] | None = None

    @property
    def endpoint_refs(self) -> tuple[EndpointRef, ...]:
        """Every endpoint serving this model: ``endpoints``, or the single ``endpoint_id``."""
        if self.endpoints:
            return tuple(self.endpoints)
        return (EndpointRef(id=self.endpoint_id),) if self.endpoint_id else ()

    @property
    def pricing_rules(self) -> tuple[PricingRule, ...]:
        if self.pricing is None:
            return ()
        return tuple(self.pricing) if isinstance(self.pricing, list) else (self.pricing,)


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


# Native routes a tier can limit by name (besides groups of them): the fifteen tasks, and the
# utility routes the seeds limit (reference §12.1).
LIMITED_ROUTES: tuple[str, ...] = (
    "txt2img", "img2img", "img-rmbg", "img-upscale", "img2txt", "txt2audio", "txt2music", "txt2video",
    "img2video", "aud2video", "vid2txt", "aud2txt", "videofile2txt", "audiofile2txt", "txt2embedding",
    "request-status", "price-calculation",
)


class TierLimits(WindowLimits, frozen=True):
    # A surface's own windows apply on top of the tier's overall ones.
    surfaces: dict[Surface, WindowLimits] = {}
    # A native route's (or a group's: ``limits.groups``) windows, on top of both.
    tasks: dict[str, WindowLimits] = {}


class LimitsConfig(_Strict, frozen=True):
    # Per key, for GET /v1/jobs/* and job WebSocket opens, whatever the tier.
    jobs_rpm: RequestCount | None = None
    # Native routes that share one budget, by group name (the seeds' Whisper bucket).
    groups: dict[str, list[str]] = {}
    # A key whose tier is not listed here is unlimited.
    tiers: dict[str, TierLimits] = {}


class BillingTier(_Strict, frozen=True):
    # Every price is multiplied by this for keys of the tier (1.0: the published prices).
    price_multiplier: NonNegativeFloat = 1.0


class BillingConfig(_Strict, frozen=True):
    """Pay-as-you-go balances: a job holds its quoted price at submit and settles when it ends."""

    enabled: bool = False
    # A key created without an explicit balance starts with this (the seeds' sign-up bonus).
    initial_balance_usd: NonNegativeFloat = 5.0
    # Settling may charge at most the hold * (1 + margin) when measured usage exceeds the quote.
    settle_margin: NonNegativeFloat = 0.5
    # A hold no job was attached to this long after submit (its gateway died before RunPod's
    # /run answered) is refunded; keep it well above any submit, upstream timeouts included.
    stale_hold_s: PositiveFloat = 1800.0
    tiers: dict[str, BillingTier] = {}


class HealthConfig(_Strict, frozen=True):
    """How the gateway judges a model's endpoints (app/routing/health.py)."""

    # RunPod's /health is polled per endpoint at most this often, by one replica (a Redis lease).
    poll_interval_s: Annotated[float, msgspec.Meta(ge=0.2, le=300)] = 5.0
    # This many failures in a row (429, 5xx, timeouts) take an endpoint out of rotation ...
    cooling_failures: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 3
    # ... for this long, on every replica; then it is tried again.
    cooling_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 30.0
    # The error rate that lowers an endpoint's weight is counted over this window.
    error_window_s: Annotated[float, msgspec.Meta(ge=10, le=3600)] = 60.0


class RoutingConfig(_Strict, frozen=True):
    upstream: Upstream = Upstream()
    # Endpoint health: polling, cooling, error window.
    health: HealthConfig = HealthConfig()
    surfaces: dict[Surface, SurfaceConfig] = {}
    local: LocalConfig = LocalConfig()
    # Per-key rate limit tiers (app/limits.py enforces them).
    limits: LimitsConfig = LimitsConfig()
    billing: BillingConfig = BillingConfig()
