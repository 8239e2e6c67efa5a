"""GET /v1/jobs/{surface}/{id}/ws: the job's status now, then every change, then close 1000.

Auth is checked after accepting, so a browser sees the close code: 4401 for a bad key,
4404 for an unknown job or another key's job (the same, so existence is not leaked),
4429 when the key is over its ``jobs_rpm`` or already holds ``DRYAPI_WS_PER_KEY`` job sockets in
this process (``app/admission.py``, which also gives each key a bounded share of the Redis
pool while its sockets set up). A watcher that falls ``QUEUE_LIMIT`` frames
behind is closed with 4408; one that stops reading altogether is dropped by the server
protocol (``app/ws_protocol.py``), since no close frame can reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from structlog.contextvars import bind_contextvars

from app.admission import KeyAdmission, tenant_of
from app.auth import bearer_token
from app.errors import GatewayError, NotFound, RateLimited
from app.jobs.access import load_owned, watch_status
from app.jobs.events import EventHub, Subscription
from app.jobs.records import TERMINAL_STATUSES, JobRecord
from app.jobs.watcher import JobWatcher
from app.limits import limit_jobs
from app.metrics import WEBSOCKETS
from app.services import Services

log = structlog.get_logger("dryapi.ws")

CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4408
CLOSE_RATE_LIMITED = 4429
CLOSE_FAILED = 4500


async def _send(socket: WebSocket[Any, Any, Any], frame: bytes) -> None:
    await socket.send_data(frame.decode(), mode="text")


async def _until_disconnect(socket: WebSocket[Any, Any, Any], owner: asyncio.Task[Any]) -> None:
    """Read (and ignore) client messages; when the client goes away, stop ``owner``."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_data(mode="text")
    owner.cancel()


@websocket("/v1/jobs/{surface:str}/{job_id:str}/ws", exclude_from_auth=True)
async def job_events(socket: WebSocket[Any, Any, Any], surface: str, job_id: str) -> None:
    state = socket.app.state
    services: Services = state.services
    hub: EventHub = state.events
    admission: KeyAdmission = state.ws_admission
    await socket.accept()
    token = bearer_token(socket)
    tenant = tenant_of(token)  # admitted before any Redis work, on the key as presented
    if not admission.try_open(tenant):
        await socket.close(code=CLOSE_RATE_LIMITED, reason=f"at most {admission.max_open} job WebSockets per key")
        return
    try:
        async with admission.setup(tenant):
            record = await _open(socket, services, surface, job_id, token)
            if record is None:
                return
            subscription = await hub.subscribe(job_id)
        await _follow(socket, state, job_id, record, subscription)
    finally:
        admission.close(tenant)


async def _open(
    socket: WebSocket[Any, Any, Any], services: Services, surface: str, job_id: str, token: str | None
) -> JobRecord | None:
    """Authenticate, rate-limit and load the job; None once the socket has been closed with why."""
    try:
        principal = await services.authenticator.authenticate(token)
    except GatewayError:
        await socket.close(code=CLOSE_UNAUTHORIZED, reason="invalid API key")
        return None
    bind_contextvars(key_id=principal.key_id)  # the access line and later lines name the caller
    try:
        await limit_jobs(socket, principal)
    except RateLimited as exc:
        await socket.close(code=CLOSE_RATE_LIMITED, reason=f"rate limited; retry after {exc.headers['Retry-After']}s")
        return None
    except GatewayError:
        await socket.close(code=CLOSE_FAILED, reason="rate limits cannot be checked right now")
        return None
    try:
        return await load_owned(services, principal, surface, job_id)
    except NotFound:
        await socket.close(code=CLOSE_NOT_FOUND, reason="job not found")
        return None


async def _follow(
    socket: WebSocket[Any, Any, Any], state: Any, job_id: str, record: JobRecord, subscription: Subscription
) -> None:
    """The job's status now, then every change until it ends or the client goes."""
    services: Services = state.services
    hub: EventHub = state.events
    watcher: JobWatcher = state.watcher
    owner = asyncio.current_task()
    assert owner is not None
    listener = asyncio.create_task(_until_disconnect(socket, owner))
    WEBSOCKETS.inc()
    try:
        body = await watch_status(services, state.tracker, watcher, record)
        subscription.last_status = body["status"]
        del record  # this frame lives as long as the socket: keep only what the loop needs
        await _send(socket, msgspec.json.encode(body))
        if body["status"] in TERMINAL_STATUSES:
            await socket.close(code=1000)
            return
        await watcher.watch(job_id)  # poll fast from now on; the hub keeps it fast while watched
        while True:
            frame, terminal = await subscription.next()
            if subscription.overflowed:
                log.info("ws_dropped_slow_client", job_id=job_id)
                await socket.close(code=CLOSE_TOO_SLOW, reason="client too slow")
                return
            await _send(socket, frame)
            if terminal:
                await socket.close(code=1000)
                return
    except asyncio.CancelledError:
        if not listener.done():
            raise  # the server is stopping, not the client
    except (WebSocketDisconnect, OSError):  # OSError: the server's "client gone" on send
        return
    except GatewayError as exc:
        with contextlib.suppress(Exception):
            await socket.close(code=CLOSE_FAILED, reason=exc.message[:120])
    finally:
        WEBSOCKETS.dec()
        listener.cancel()
        hub.unsubscribe(subscription)
