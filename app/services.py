"""The long-lived parts one gateway process shares between requests (kept on ``app.state``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from structlog.contextvars import bind_contextvars

from app.auth import Authenticator
from app.billing.ledger import Ledger
from app.files import FileStore
from app.jobs.records import JobRecord, JobStore
from app.keys import KeyStore
from app.routing.loader import LoadedRouting
from app.routing.resolver import Route, resolve
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

    def resolve(self, surface: Surface, model: str | None) -> Route:
        route = resolve(self.routing.config, surface, model, local_upstream=self.settings.local_upstream)
        # Every later log line of this request names the model and endpoint.
        bind_contextvars(model=route.public_model, endpoint=route.endpoint_id)
        return route
