"""The app factory: ``create_app(settings)`` wires routes, auth, errors and shared services.

``app`` (module attribute) builds the app from the environment on first access, so
``uvicorn app.main:app`` works while importing this module has no side effects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin

from app.admin.ledger import key_ledger
from app.admin.routing import routing_admin_router
from app.admin.usage import usage_report
from app.admin.webhooks import webhooks_admin_router
from app.admission import KeyAdmission
from app.auth import Authenticator, AuthMiddleware
from app.billing.ledger import Ledger
from app.billing.pricing import usd_to_micro
from app.billing.reclaim import HoldReclaimer
from app.docs import TAGS
from app.docs.links import add_job_links
from app.docs.openapi import finish_openapi, openapi_json
from app.errors import EXCEPTION_HANDLERS
from app.files import FileStore, download_file
from app.health import healthz, readyz
from app.jobs.events import EventHub
from app.jobs.records import JobStore
from app.jobs.tracker import JobTracker
from app.jobs.watcher import JobWatcher
from app.keys import KeyStore
from app.limits import Limiter
from app.mcp.oauth import OAUTH_ROUTES
from app.mcp.server import McpServer
from app.metrics import WEBHOOK_DELIVERIES
from app.native.price import PRICE_ROUTES
from app.native.results import native_output
from app.native.routes import NATIVE_ROUTES
from app.observability.plugin import ObservabilityPlugin
from app.openai.chat import chat_completions
from app.openai.embeddings import create_embeddings
from app.openai.images import edit_images, generate_images
from app.openai.job_routes import job_cancel, job_download, job_events_without_upgrade, job_status, signed_result
from app.openai.job_socket import job_events
from app.openai.models import list_models, retrieve_model
from app.openai.outputs import public_output
from app.openai.speech import create_speech
from app.openai.transcribe import create_transcription
from app.openrouter.media_routes import MEDIA_ROUTES
from app.openrouter.mirror import mirrored, taken_paths
from app.openrouter.routes import OPENROUTER_ROUTES
from app.ops.runpod import runpod_router
from app.realtime.authorize import broadcasting_auth
from app.realtime.broadcast import PusherBroadcaster, RedisBroadcaster
from app.realtime.hub import realtime_hub
from app.realtime.protocol import ChannelSigner, local_app_secret
from app.realtime.socket import pusher_socket
from app.redis_guard import RedisGuard
from app.routing.health import HealthBoard
from app.routing.health_sync import HealthSync
from app.routing.loader import LoadedRouting, load_routing
from app.routing.reload import RoutingReloader
from app.runtime import tune_gc
from app.services import RoutingHolder, Services
from app.settings import Settings, SettingsError, load_settings
from app.signing import Signer
from app.store import Keys, create_redis
from app.upstream.client import RunPodClient
from app.usage import flush as flush_usage
from app.webhooks import WebhookOutbox, WebhookSettings
from app.webhooks.routes import webhooks_router
from app.webhooks.runpod_callback import runpod_callback

log = structlog.get_logger("dryapi")

# Paths reachable without an API key (signed URLs and callbacks carry their own proof).
PUBLIC_PATHS = (
    r"^/(healthz|readyz|metrics|schema|openapi\.json|v1/files/|v1/results/|v1/webhooks/runpod/"
    r"|\.well-known/oauth-|oauth/)"
)
# The OpenAI routes, each served under /v1 and mirrored under /api/v1 (OpenRouter's layout).
OPENAI_ROUTES: list[Any] = [
    chat_completions,
    create_embeddings,
    generate_images,
    edit_images,
    create_transcription,
    create_speech,
    list_models,
    retrieve_model,
    job_status,
    job_download,
    job_cancel,
    job_events,
    job_events_without_upgrade,  # a plain GET on the WebSocket route: 426
]
ROUTE_HANDLERS: list[Any] = [
    *OPENAI_ROUTES,
    *OPENROUTER_ROUTES,
    download_file,
    healthz,
    readyz,
    signed_result,
    openapi_json,
    runpod_callback,
    runpod_router,
    webhooks_router,
    webhooks_admin_router,
    routing_admin_router,
    usage_report,
    key_ledger,
    *NATIVE_ROUTES,
    *PRICE_ROUTES,
    *MEDIA_ROUTES,  # OpenRouter's /api/v1 images, audio and video routes
    broadcasting_auth,
]


def build_services(settings: Settings, routing: LoadedRouting) -> Services:
    redis = create_redis(settings.redis_url)
    keys = Keys(settings.redis_prefix)
    signer = Signer(settings.signing_secret)
    key_store = KeyStore(redis, keys)
    holder = RoutingHolder(routing)
    health = HealthBoard(routing.config.health)
    return Services(
        settings=settings,
        routing=holder,
        redis=redis,
        keys=keys,
        signer=signer,
        client=RunPodClient(timeout_s=routing.config.upstream.request_timeout_s, observer=health.observe),
        health=health,
        key_store=key_store,
        authenticator=Authenticator(
            key_store,
            admin_key=settings.admin_key,
            allow_open=settings.loopback,
            cache_s=settings.key_cache_s,
            default_webhook_secret=settings.webhook_secret,
            guard=RedisGuard(timeout_s=settings.redis_timeout_s),
            fail_open=settings.redis_failure == "open",
        ),
        files=FileStore(redis, keys, signer, public_url=settings.public_url, ttl_s=settings.file_ttl_s),
        jobs=JobStore(redis, keys, retention_s=settings.result_ttl_s),
        ledger=Ledger(redis, keys, initial_micro=lambda: usd_to_micro(holder.config.billing.initial_balance_usd),
                      ttl_days=settings.ledger_ttl_days),
    )


def build_outbox(services: Services, config: WebhookSettings | None = None) -> WebhookOutbox:
    """Durable, signed client webhooks; each tenant's deliveries are signed with its own secret."""
    config = config or WebhookSettings.from_env()
    fallback = services.settings.webhook_secret

    async def secret_for(key_id: str) -> str | None:
        record = await services.key_store.get(key_id)
        return (record.webhook_secret if record else None) or fallback

    return WebhookOutbox(
        services.redis,
        services.keys,
        secret_for=secret_for,
        schedule=config.schedule,
        allowlist=services.settings.webhook_allowlist | config.allowlist,
        timeout_s=config.timeout_s,
        breaker_threshold=config.breaker_threshold,
        on_outcome=lambda outcome: WEBHOOK_DELIVERIES.labels(outcome=outcome).inc(),
    )


async def _check_exposure(services: Services) -> None:
    """A gateway reachable from other hosts never runs without keys."""
    settings = services.settings
    if settings.loopback or settings.admin_key:
        if await services.authenticator.is_open():
            log.warning("open_mode", detail="no API keys exist; every local request is accepted")
        return
    if await services.key_store.count() == 0:
        raise SettingsError(
            f"Refusing to serve on {settings.host} with no API keys: "
            "create one with `dryapi-gateway keys create` or set DRYAPI_ADMIN_KEY"
        )


def create_app(
    settings: Settings | None = None,
    routing: LoadedRouting | None = None,
    webhooks: WebhookSettings | None = None,
) -> Litestar:
    settings = settings or load_settings()
    routing = routing or load_routing(settings.routing_path)
    services = build_services(settings, routing)
    services.output_renderers["openai"] = public_output
    services.output_renderers["native"] = native_output
    outbox = build_outbox(services, webhooks)
    external = settings.pusher_url is not None and settings.pusher_app_id is not None
    broadcaster = (
        PusherBroadcaster(str(settings.pusher_url), str(settings.pusher_app_id), settings.pusher_app_key,
                          settings.pusher_app_secret)
        if external else RedisBroadcaster(services)
    )  # fmt: skip
    tracker = JobTracker(services, outbox=outbox, broadcaster=broadcaster)
    watcher = JobWatcher(services, tracker)
    events = EventHub(services, refresh=watcher.watch)
    pusher_hub = realtime_hub(services)
    reloader = RoutingReloader(services)
    health_sync = HealthSync(
        services.health, services.redis, services.keys, services.client, lambda: services.routing.config,
        enabled=settings.local_upstream is None,
    )
    mcp = McpServer()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await _check_exposure(services)
        stop = asyncio.Event()
        background = [asyncio.create_task(watcher.run(stop)), asyncio.create_task(outbox.run(stop)),
                      asyncio.create_task(HoldReclaimer(services).run(stop))]
        await reloader.start()  # subscribed to reload broadcasts before the first request
        background.append(asyncio.create_task(reloader.run(stop)))
        background.append(asyncio.create_task(health_sync.run(stop)))
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*background, return_exceptions=True)
            await events.close()
            await pusher_hub.close()
            if isinstance(broadcaster, PusherBroadcaster):
                await broadcaster.aclose()
            await services.client.aclose()
            await flush_usage()
            await services.redis.aclose()

    handlers = [*ROUTE_HANDLERS, *mirrored(OPENAI_ROUTES, taken=taken_paths(ROUTE_HANDLERS))]
    app = Litestar(
        route_handlers=[*(handlers if external else [*handlers, pusher_socket]), mcp.route(), *OAUTH_ROUTES],
        middleware=[DefineMiddleware(AuthMiddleware, exclude=PUBLIC_PATHS)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan, mcp.lifespan],
        request_max_body_size=32 * 1024 * 1024,
        openapi_config=OpenAPIConfig(
            title="dryAPI gateway",
            version="0.1.0",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin(), JsonRenderPlugin()],
            tags=TAGS,
        ),
        logging_config=None,
        plugins=[ObservabilityPlugin.from_settings(settings)],  # logs, /metrics, CORS, request ids, drain
        debug=False,
    )
    finish_openapi(app.openapi_schema, public_paths=PUBLIC_PATHS)
    add_job_links(app.openapi_schema)  # enqueue → job routes, for clients and stateful fuzzing
    app.state.services = services
    app.state.authenticator = services.authenticator
    app.state.signer = services.signer
    app.state.files = services.files
    app.state.outbox = outbox
    app.state.tracker = tracker
    app.state.watcher = watcher
    app.state.events = events
    app.state.realtime_hub = pusher_hub
    app_secret = settings.pusher_app_secret or local_app_secret(settings.signing_secret)
    app.state.channel_signer = ChannelSigner(settings.pusher_app_key, app_secret)
    app.state.reloader = reloader
    app.state.health_sync = health_sync
    app.state.limiter = Limiter(services)
    app.state.ws_admission = KeyAdmission(settings.ws_per_key)
    return app


def __getattr__(name: str) -> Any:
    """``app.main:app``, the app ``dryapi-gateway serve`` runs in each worker process."""
    if name == "app":
        built = create_app()
        tune_gc()
        globals()["app"] = built
        return built
    raise AttributeError(name)
