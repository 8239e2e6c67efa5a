"""The reference's Webhooks routes for the calling key: account settings, resuming, a test delivery.

- ``GET/PUT /v1/webhooks/settings``: the key's account-level ``webhook_url`` (used for every
  async job that names none) and its delivery state.
- ``POST /v1/webhooks/settings/resume``: re-enable the key's deliveries after the breaker paused them.
- ``POST /v1/webhooks/test``: one signed delivery of an event with a synthetic ``test_`` job id,
  through the outbox (so it is retried like any other).

Destinations pass the same SSRF rule as every webhook (``app.netguard``); a refused one is a 400
``invalid_webhook_url``.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import msgspec
from litestar import Request, Router, get, post, put
from litestar.datastructures import State

from app import docs
from app.auth import bearer_token, principal_of
from app.errors import InvalidRequest
from app.keys import ApiKeyRecord
from app.netguard import check_url
from app.services import Services
from app.webhooks.outbox import WebhookOutbox

Event = Literal["job.processing", "job.completed", "job.failed"]
# A test payload is stored in the outbox and retried for a day: keep it small.
MAX_TEST_DATA_BYTES = 16 * 1024
MAX_URL_LENGTH = 2048


class WebhookTestBody(msgspec.Struct, forbid_unknown_fields=True):
    webhook_url: str
    event: Event = "job.completed"
    data: dict[str, Any] | None = None


class WebhookTestResult(msgspec.Struct):
    success: bool
    event: str
    job_id: str


class WebhookSettingsBody(msgspec.Struct, forbid_unknown_fields=True):
    webhook_url: str | None  # null clears it


class WebhookSettingsView(msgspec.Struct):
    webhook_url: str | None
    paused: bool
    consecutive_failures: int
    pending: int


_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_FIELD = re.compile(r"(?:missing required|unknown) field `(?P<field>[^`]+)`")
T = TypeVar("T")


async def _body(request: Request[Any, Any, Any], schema: type[T]) -> T:
    """The JSON body as ``schema``; every failure a 400 naming the field (never a 500)."""
    raw = await request.body()
    try:
        return msgspec.json.decode(raw, type=schema)
    except msgspec.ValidationError as exc:
        text = str(exc)
        at = _AT.search(text)
        message = text[: at.start()] if at else text
        field = _FIELD.search(message)
        param = field.group("field") if field else (re.sub(r"\[(\d+)\]", r".\1", at.group("path")) if at else None)
        raise InvalidRequest(f"{message} ({param})" if param else message, param=param or None) from None
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested past the decoder's stack
        raise InvalidRequest("The request body is not a valid JSON object", code="invalid_json") from None


async def _checked(services: Services, url: str) -> str:
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequest(
            f"webhook_url is longer than {MAX_URL_LENGTH} characters", param="webhook_url", code="invalid_webhook_url"
        )
    try:
        await check_url(url, param="webhook_url", allowlist=services.settings.webhook_allowlist, require_https=True)
    except InvalidRequest as exc:
        raise InvalidRequest(exc.message, param="webhook_url", code="invalid_webhook_url") from None
    return url


async def _own_record(services: Services, request: Request[Any, Any, Any]) -> ApiKeyRecord:
    principal = principal_of(request)
    record = await services.key_store.get(principal.key_id)
    if record is None:  # DRYAPI_ADMIN_KEY and open mode have no stored key to keep settings on
        raise InvalidRequest(
            "This key has no stored settings (it comes from DRYAPI_ADMIN_KEY or open mode); "
            "issue a key with `dryapi-gateway keys create`",
            code="key_has_no_settings",
        )
    return record


async def _view(outbox: WebhookOutbox, key_id: str, webhook_url: str | None) -> WebhookSettingsView:
    status = await outbox.status(key_id)
    return WebhookSettingsView(
        webhook_url=webhook_url or None,
        paused=bool(status["paused"]),
        consecutive_failures=int(status["consecutive_failures"]),
        pending=int(status["pending"]),
    )


@get(
    "/settings",
    summary="Get the account's webhook settings",
    description="The key's account-level `webhook_url` (used for every async job that names none) and its "
    "delivery state: `paused` once 10 deliveries in a row failed, until resumed.",
    responses=docs.WEBHOOK_SETTINGS_RESPONSES,
)
async def get_settings(request: Request[Any, Any, Any], state: State) -> WebhookSettingsView:
    services: Services = state.services
    principal = principal_of(request)
    record = await services.key_store.get(principal.key_id)
    return await _view(state.outbox, principal.key_id, record.webhook_url if record else None)


@put(
    "/settings",
    summary="Set the account's webhook URL",
    description="`webhook_url`: an https URL that passes the SSRF check, or null to clear it. Jobs that name "
    "their own `webhook_url` keep using theirs.",
    operation_class=docs.WEBHOOK_SETTINGS_OPERATION,
    responses=docs.WEBHOOK_SETTINGS_RESPONSES,
)
async def put_settings(request: Request[Any, Any, Any], state: State) -> WebhookSettingsView:
    services: Services = state.services
    data = await _body(request, WebhookSettingsBody)
    record = await _own_record(services, request)
    url = await _checked(services, data.webhook_url) if data.webhook_url else ""
    updated = await services.key_store.set_webhook_url(record.id, url)
    key = bearer_token(request)
    if key:  # this replica sees the new URL at once; the others within DRYAPI_KEY_CACHE_S
        services.authenticator.forget(key)
    return await _view(state.outbox, record.id, updated.webhook_url if updated else url)


@post(
    "/settings/resume",
    status_code=200,
    summary="Resume the account's paused webhook deliveries",
    description="Closes the key's circuit breaker; deliveries held while it was open become due now.",
    responses=docs.WEBHOOK_SETTINGS_RESPONSES,
)
async def resume_settings(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    outbox: WebhookOutbox = state.outbox
    key_id = principal_of(request).key_id
    resumed = await outbox.resume(key_id)
    return {"resumed": resumed, **(await outbox.status(key_id))}


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _test_data(event: Event, job_id: str, extra: dict[str, Any] | None) -> dict[str, Any]:
    """The event's payload ``data`` as a real job's would be, the caller's fields on top."""
    now = _iso_now()
    data: dict[str, Any] = {"job_request_id": job_id, "job_type": "test"}
    if event == "job.processing":
        data |= {"status": "processing", "previous_status": "pending", "started_at": now}
    elif event == "job.completed":
        data |= {"status": "done", "previous_status": "processing", "completed_at": now, "processing_time_ms": 0}
    else:
        data |= {"status": "error", "previous_status": "processing", "failed_at": now,
                 "error_code": "TEST", "error_message": "A test delivery of job.failed"}
    data |= extra or {}
    data["job_request_id"] = job_id  # always the synthetic id: a test never names a real job
    return data


@post(
    "/test",
    status_code=200,
    summary="Send a test webhook",
    description="Sends one signed delivery of `event` (default `job.completed`) with a synthetic job id "
    "(`test_…`) to `webhook_url`, signed with the key's own webhook secret and retried like any delivery. "
    "`data` fields are merged into the payload's `data`.",
    operation_class=docs.WEBHOOK_TEST_OPERATION,
    responses=docs.WEBHOOK_TEST_RESPONSES,
)
async def send_test(request: Request[Any, Any, Any], state: State) -> WebhookTestResult:
    services: Services = state.services
    outbox: WebhookOutbox = state.outbox
    data = await _body(request, WebhookTestBody)
    if data.data is not None and len(msgspec.json.encode(data.data)) > MAX_TEST_DATA_BYTES:
        raise InvalidRequest(f"data is larger than {MAX_TEST_DATA_BYTES} bytes", param="data")
    url = await _checked(services, data.webhook_url)
    job_id = "test_" + uuid.uuid4().hex
    payload = _test_data(data.event, job_id, data.data)
    await outbox.enqueue(key_id=principal_of(request).key_id, url=url, event=data.event, data=payload)
    return WebhookTestResult(success=True, event=data.event, job_id=job_id)


webhooks_router = Router(
    path="/v1/webhooks",
    route_handlers=[get_settings, put_settings, resume_settings, send_test],
    tags=[docs.TAG_WEBHOOKS],
)

__all__ = ["webhooks_router"]
