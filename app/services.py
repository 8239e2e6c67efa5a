"""The long-lived parts one gateway process shares between requests (kept on ``app.state``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis.asyncio as aioredis
from structlog.contextvars import bind_contextvars

from app.auth import Authenticator
from app.billing.ledger import Ledger
from app.files import FileStore
from app.jobs.records import JobRecord, JobStore
from app.keys import KeyStore
from app.metrics import ENDPOINT_CHOSEN
from app.routing.fallback import serve_with_fallbacks
from app.routing.health import HealthBoard
from app.routing.loader import LoadedRouting
from app.routing.preferences import DEFAULT_PREFS, ProviderPrefs, RoutingWishes
from app.routing.resolver import ModelRoutes, Route, resolve_model
from app.routing.schema import RoutingConfig, Surface
from app.settings import Settings
from app.signing import Signer
from app.store import Keys
from app.upstream.client import RunPodClient


class RoutingHolder:
    """The active routing config; replaced whole so a request keeps the config it started with."""

    def __init__(self, loaded: LoadedRouting) -> None:
        self.loaded = loaded
        self.loaded_at = time.time()

    @property
    def config(self) -> RoutingConfig:
        return self.loaded.config

    def swap(self, loaded: LoadedRouting) -> None:
        self.loaded = loaded
        self.loaded_at = time.time()


T = TypeVar("T")
OutputRenderer = Callable[["Services", JobRecord, Any], Awaitable[Any]]


@dataclass
class Services:
    settings: Settings
    routing: RoutingHolder
    redis: aioredis.Redis
    keys: Keys
    signer: Signer
    client: RunPodClient
    key_store: KeyStore
    authenticator: Authenticator
    files: FileStore
    jobs: JobStore
    ledger: Ledger  # per-key balances (app/billing); holds and settles only when billing is enabled
    # How a finished job's output reaches its client, by the dialect that started it
    # (``record.options["dialect"]``, default ``openai``): each dialect registers its renderer
    # when the app is built, so the engine never imports a dialect.
    output_renderers: dict[str, OutputRenderer] = field(default_factory=dict)
    # Per-endpoint health the endpoint choice reads (app/routing/health.py; synced in the background).
    health: HealthBoard = field(default_factory=HealthBoard)

    async def render_output(self, record: JobRecord, output: Any) -> Any:
        render = self.output_renderers[str(record.options.get("dialect", "openai"))]
        return await render(self, record, output)

    def upstream_api_key(self) -> str:
        """The key for RunPod calls about an existing job (none for the local emulator)."""
        return "" if self.settings.local_upstream else self.routing.config.upstream.api_key

    def callback_url(self, nonce: str) -> str:
        """Where RunPod reports a finished job; signed because RunPod does not sign webhooks."""
        signature = self.signer.sign("runpod-callback", nonce)
        return f"{self.settings.public_url}/v1/webhooks/runpod/{nonce}?sig={signature}"

    def resolve_model(self, surface: Surface, model: str | None, prefs: ProviderPrefs = DEFAULT_PREFS) -> ModelRoutes:
        return resolve_model(
            self.routing.config, surface, model, local_upstream=self.settings.local_upstream, board=self.health,
            prefs=prefs,
        )

    def resolve(self, surface: Surface, model: str | None, prefs: ProviderPrefs = DEFAULT_PREFS) -> Route:
        """The endpoint for one attempt, chosen by weight and health (no fallback)."""
        route = self.resolve_model(surface, model, prefs).routes[0]
        # Every later log line of this request names the model and endpoint.
        bind_contextvars(model=route.public_model, endpoint=route.endpoint_id)
        ENDPOINT_CHOSEN.labels(surface=surface, endpoint=route.endpoint_id).inc()
        return route

    async def serve(
        self,
        surface: Surface,
        wishes: RoutingWishes,
        attempt: Callable[[Route, bool], Awaitable[T]],
        *,
        timeouts: bool = True,
    ) -> tuple[Route, T]:
        """``attempt`` on the request's models and endpoints in turn (app/routing/fallback.py)."""
        return await serve_with_fallbacks(
            surface, wishes, lambda model: self.resolve_model(surface, model, wishes.prefs), attempt,
            timeouts=timeouts,
        )
