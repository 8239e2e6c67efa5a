"""``ObservabilityPlugin``: wires logs, metrics, CORS, request ids and draining into the app.

At app creation it configures logging, adds ``/metrics`` and the route-level context
middleware, and sets the CORS config; at startup (lifespan) it wraps Litestar's ASGI
handler in ``RequestObserver`` (so even router 404s are observed) and hooks SIGTERM.

``/metrics`` is public (no key): operators must not expose it outside their network (it
reveals route, endpoint and traffic shape). With ``PROMETHEUS_MULTIPROC_DIR`` set
(``serve --workers N`` does) it aggregates every worker's files.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Response, get
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from app.observability.cors import cors_config
from app.observability.logging import configure_logging
from app.observability.middleware import RequestObserver, bind_request_context
from app.observability.shutdown import Drain, SignalHook
from app.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Litestar appends the charset to text/* media types itself.
_MEDIA_TYPE = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")


def render_metrics() -> bytes:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@get(
    "/metrics",
    exclude_from_auth=True,
    tags=["ops"],
    summary="Prometheus metrics",
    description="Prometheus text exposition of the `dryapi_*` metrics (all workers of this process group). "
    "Public like /healthz: keep it on an internal network or behind the scraper's network policy.",
    media_type=_MEDIA_TYPE,
)
async def metrics() -> Response[bytes]:
    return Response(render_metrics(), media_type=_MEDIA_TYPE)


class ObservabilityPlugin(InitPluginProtocol):
    def __init__(
        self,
        *,
        log_format: str = "auto",
        cors_origins: tuple[str, ...] = (),
        drain_s: float = 30.0,
        shutdown_delay_s: float = 0.0,
    ) -> None:
        self.log_format = log_format
        self.cors_origins = cors_origins
        self.drain = Drain(drain_s, shutdown_delay_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> ObservabilityPlugin:
        return cls(
            log_format=settings.log_format,
            cors_origins=settings.cors_origins,
            drain_s=settings.drain_s,
            shutdown_delay_s=settings.shutdown_delay_s,
        )

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        configure_logging(self.log_format)
        app_config.route_handlers.append(metrics)
        app_config.middleware.append(bind_request_context)
        app_config.lifespan.append(self.lifespan)
        app_config.state.drain = self.drain
        if app_config.cors_config is None:
            app_config.cors_config = cors_config(self.cors_origins)
        return app_config

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        if not isinstance(app.asgi_handler, RequestObserver):
            app.asgi_handler = RequestObserver(app.asgi_handler, self.drain, self.cors_origins)
        hook = SignalHook(self.drain, asyncio.get_running_loop())
        hook.install()
        try:
            yield
        finally:
            self.drain.start()
            hook.uninstall()
            if os.environ.get(MULTIPROC_ENV):
                # Live gauges (open WebSockets) of this worker stop counting.
                multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
