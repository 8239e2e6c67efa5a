"""``create_emulator_app``: the Litestar app serving emulated RunPod endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State

from app.emulator.config import EmulatorEndpoint, Timings
from app.emulator.openai import OpenAIRoutes
from app.emulator.routes import RUNSYNC_MAX_BYTES, JobRoutes
from app.emulator.service import Emulator
from app.emulator.web import error_response, require_api_key


def create_emulator_app(
    endpoints: Mapping[str, EmulatorEndpoint],
    *,
    api_key: str | None = None,
    run_result_ttl_s: float = 1800.0,
    runsync_result_ttl_s: float = 60.0,
    webhook_retry_delay_s: float = 10.0,
    preload: bool = False,
) -> Litestar:
    """A RunPod-compatible serverless API at ``/v2/{endpoint_id}/...`` running ``endpoints``.

    ``api_key`` set: requests need ``Authorization: <key>`` or ``Bearer <key>`` (else 401).
    ``preload``: load every handler in the background at startup, not on its first job.
    Queue workers, expiry timers and webhook deliveries live in the app's lifespan.
    """
    timings = Timings(
        run_result_ttl_s=run_result_ttl_s,
        runsync_result_ttl_s=runsync_result_ttl_s,
        webhook_retry_delay_s=webhook_retry_delay_s,
    )
    emulator = Emulator(endpoints, timings, preload=preload)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await emulator.start()
        try:
            yield
        finally:
            await emulator.stop()

    return Litestar(
        route_handlers=[JobRoutes, OpenAIRoutes],
        guards=[require_api_key],
        exception_handlers={Exception: error_response},
        lifespan=[lifespan],
        state=State({"emulator": emulator, "emulator_api_key": api_key or None}),
        openapi_config=None,
        logging_config=None,  # in-process (serve --local) it must not reconfigure the host's logging
        request_max_body_size=RUNSYNC_MAX_BYTES,
    )
