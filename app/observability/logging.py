"""structlog, configured once per process: JSON lines in production, a console in development.

``DRYAPI_LOG_FORMAT`` picks ``json`` or ``console``; ``auto`` (the default) means console
when stdout is a terminal and JSON otherwise (containers, systemd, log shippers). Standard
library loggers (uvicorn, litestar, aiohttp, httpx) go through the same renderer at WARNING
and above, so INFO lines that carry URLs with query strings never reach the output.

Every line written while a request runs carries the contextvars bound for it (request_id,
key_id, surface, model, endpoint, job_id). A last processor drops fields whose names say
they hold payloads or secrets, as a guard against a careless ``log.info(..., prompt=...)``.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import msgspec
import structlog
from structlog.types import EventDict, Processor, WrappedLogger

FORMATS = ("auto", "json", "console")
_STDLIB_LEVEL = logging.WARNING
# Fields that must never be rendered whatever a caller passes (payloads, credentials).
_SECRETS = ("api_key", "authorization", "key", "secret", "password", "token", "query", "query_string")
_PAYLOADS = ("prompt", "messages", "input", "output", "content", "body", "text")
_MEDIA = ("audio", "image", "images", "embedding", "embeddings")
_FORBIDDEN = frozenset(_SECRETS + _PAYLOADS + _MEDIA)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_configured: str | None = None


def sane_request_id(value: str | None) -> str | None:
    """A client's ``X-Request-ID`` if it is safe to echo and log (≤ 128 of ``[A-Za-z0-9._-]``)."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return None


def _drop_forbidden(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for name in _FORBIDDEN.intersection(event_dict):
        event_dict[name] = "[redacted]"
    return event_dict


def resolve_format(name: str, stream: TextIO | None = None) -> str:
    name = (name or "auto").strip().lower()
    if name not in FORMATS:
        raise ValueError(f"DRYAPI_LOG_FORMAT must be one of {', '.join(FORMATS)}, got {name!r}")
    if name == "auto":
        stream = stream or sys.stdout
        return "console" if stream.isatty() else "json"
    return name


_json = msgspec.json.Encoder(enc_hook=repr)


def _dumps(obj: Any, **_: Any) -> str:
    return _json.encode(obj).decode()


def _renderer(fmt: str) -> Processor:
    if fmt == "json":
        return structlog.processors.JSONRenderer(serializer=_dumps)
    return structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())


class _Stdout:
    """Whatever ``sys.stdout`` is at write time (test runners and daemons swap it)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


_STDOUT = _Stdout()


def configure_logging(name: str = "auto") -> str:
    """Configure structlog and the stdlib root logger; idempotent per format. Returns the format."""
    global _configured
    fmt = resolve_format(name)
    if _configured == fmt:
        return fmt
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = _renderer(fmt)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, _drop_forbidden, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.WriteLoggerFactory(file=_STDOUT),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _route_stdlib(shared, renderer)
    _configured = fmt
    return fmt


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler we installed, so reconfiguring replaces it and nothing else."""


def _route_stdlib(shared: list[Processor], renderer: Processor) -> None:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _drop_forbidden,
            renderer,
        ],
    )
    handler = _OurHandler(_STDOUT)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_STDLIB_LEVEL)
    # uvicorn's own handlers (when it configured logging) would print outside structlog.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.CRITICAL)  # request lines come from the app
