"""Reading and validating client bodies, and choosing how a request runs."""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

import msgspec
from litestar import Request

from app.auth import Principal, principal_of
from app.errors import InvalidRequest
from app.limits import limit_request
from app.routing.resolver import Route
from app.routing.schema import Surface
from app.services import Services

T = TypeVar("T")
Mode = Literal["async", "stream", "sync"]

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_FIELD = re.compile(r"(?:missing required|unknown) field `(?P<field>[^`]+)`")


def _param(path: str) -> str:
    return re.sub(r"\[(\d+)\]", r".\1", path).lstrip(".")


def validation_error(exc: msgspec.ValidationError) -> InvalidRequest:
    text = str(exc)
    at = _AT.search(text)
    message = text[: at.start()] if at else text
    param = _param(at.group("path")) if at else ""
    field = _FIELD.search(message)
    if field:
        param = f"{param}.{field.group('field')}" if param else field.group("field")
    return InvalidRequest(f"{message} ({param})" if param else message, param=param or None)


def validate(body: dict[str, Any], schema: type[T]) -> T:
    try:
        return msgspec.convert(body, schema)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None


def decode_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequest("The request body is empty; send a JSON object", code="invalid_json")
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}", code="invalid_json") from None
    except RecursionError:  # msgspec's bound on nesting, below the interpreter's
        raise InvalidRequest("The request body nests too deeply", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object", code="invalid_json")
    return body


async def read_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return decode_object(await request.body())


def wants_async(request: Request[Any, Any, Any]) -> bool:
    prefer = request.headers.get("prefer")
    if not prefer:
        return False
    return any(part.split(";")[0].strip().lower() == "respond-async" for part in prefer.split(","))


def choose_mode(request: Request[Any, Any, Any], route: Route, *, stream: bool, webhook_url: str | None) -> Mode:
    """RFC 7240 ``Prefer: respond-async`` or a webhook → async; else stream; else the surface's mode."""
    if webhook_url or wants_async(request):
        return "async"
    if stream:
        return "stream"
    return "async" if route.mode == "async" else "sync"


async def admit(request: Request[Any, Any, Any], surface: Surface) -> tuple[Services, Principal]:
    """The first step of every inference route: who is calling, and may they, now."""
    services: Services = request.app.state.services
    principal = principal_of(request)
    await limit_request(request, principal, surface)
    return services, principal
