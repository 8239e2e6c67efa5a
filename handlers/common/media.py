"""Client media for handlers: fetched by URL or decoded from base64, held in memory only.

Limits follow the seed: audio and video up to 80 MB, images up to 10 MB (override with
``MEDIA_MAX_AUDIO_MB`` / ``MEDIA_MAX_VIDEO_MB`` / ``MEDIA_MAX_IMAGE_MB``). Bytes are never
written to disk.

Fetching a client URL from inside a GPU cloud is an SSRF risk, so ``fetch_media``:

- accepts only http(s) URLs;
- resolves the host of the URL and of every redirect hop (redirects are followed by hand)
  and refuses private, loopback, link-local, shared, reserved, multicast and cloud-metadata
  addresses; the connection then goes to the address that was checked, so a second DNS
  answer cannot swap in another one (DNS rebinding);
- counts the body while streaming, whatever Content-Length says, and enforces connect, read
  and total timeouts.

``MEDIA_FETCH_ALLOWLIST`` (comma-separated ``host`` or ``host:port``, a URL also works)
exempts hosts from the address check, e.g. the gateway's own URL for staged uploads in
local mode. Errors: ``InvalidInput`` naming the field for a bad URL, a refused address,
too much data or a wrong format; ``HandlerError`` (server_error) when the remote fails.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from handlers.common.addresses import is_public_address
from handlers.common.errors import HandlerError, InvalidInput
from handlers.common.media_formats import MediaKind, check_format

__all__ = ["MAX_BYTES", "FetchSettings", "Media", "MediaKind", "decode_base64_media", "fetch_media", "max_bytes"]

# httpx logs every request's full URL at INFO: a client's media link (a signed upload URL
# carries its signature) must not reach the worker's logs.
logging.getLogger("httpx").setLevel(logging.WARNING)

MB = 1024 * 1024
MAX_BYTES: dict[str, int] = {"audio": 80 * MB, "video": 80 * MB, "image": 10 * MB}
_ACCEPT = {"audio": "audio/*, video/*;q=0.9, */*;q=0.5", "video": "video/*, */*;q=0.5", "image": "image/*, */*;q=0.5"}


@dataclass(frozen=True)
class Media:
    data: bytes
    content_type: str | None
    format: str | None  # recognised or declared format (see media_formats.ALLOWED), None if unknown


@dataclass(frozen=True)
class FetchSettings:
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0  # longest silence between two reads
    total_timeout_s: float = 300.0  # a server dripping bytes cannot hold a GPU worker forever
    max_redirects: int = 5

    @classmethod
    def from_env(cls) -> FetchSettings:
        def number(name: str, default: float) -> float:
            raw = os.environ.get(name, "").strip()
            return float(raw) if raw else default

        return cls(
            connect_timeout_s=number("MEDIA_FETCH_CONNECT_TIMEOUT_S", cls.connect_timeout_s),
            read_timeout_s=number("MEDIA_FETCH_READ_TIMEOUT_S", cls.read_timeout_s),
            total_timeout_s=number("MEDIA_FETCH_TOTAL_TIMEOUT_S", cls.total_timeout_s),
            max_redirects=int(number("MEDIA_FETCH_MAX_REDIRECTS", cls.max_redirects)),
        )


def max_bytes(kind: MediaKind) -> int:
    """The size limit for ``kind``: the seed's default unless the operator overrides it."""
    raw = os.environ.get(f"MEDIA_MAX_{kind.upper()}_MB", "").strip()
    return int(float(raw) * MB) if raw else MAX_BYTES[kind]


def _too_large(param: str, kind: MediaKind, limit: int) -> InvalidInput:
    return InvalidInput(
        param, f"{param} is larger than the {limit / MB:.4g} MB limit for {kind}", code="media_too_large"
    )


# --- base64 ------------------------------------------------------------------------------


def decode_base64_media(value: Any, kind: MediaKind, param: str, *, limit: int | None = None) -> Media:
    """Decode raw base64 (standard or URL-safe, padding optional) or a ``data:`` URI."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(param, f"{param} must be a non-empty base64 string", code="invalid_base64")
    limit = limit or max_bytes(kind)
    text, content_type = value.strip(), None
    if text[:5].lower() == "data:":
        header, comma, text = text.partition(",")
        if not comma or ";base64" not in header.lower():
            raise InvalidInput(
                param, f"{param} must be a base64 data URI (data:<type>;base64,...)", code="invalid_base64"
            )
        content_type = header[5:].split(";")[0].strip().lower() or None
    if len(text) // 4 * 3 > limit + limit // 20 + 1024:  # 5% slack for line breaks
        raise _too_large(param, kind, limit)  # decided before decoding: no huge allocation
    compact = "".join(text.split()).translate(str.maketrans("-_", "+/"))
    try:
        data = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(param, f"{param} is not valid base64", code="invalid_base64") from None
    if len(data) > limit:
        raise _too_large(param, kind, limit)
    return Media(data, content_type, check_format(data, kind, param, content_type=content_type))


# --- addresses ---------------------------------------------------------------------------


def allowlist_from_env() -> frozenset[str]:
    """``MEDIA_FETCH_ALLOWLIST`` entries as lower-case ``host`` or ``host:port``."""
    entries: set[str] = set()
    for raw in os.environ.get("MEDIA_FETCH_ALLOWLIST", "").split(","):
        entry = raw.strip().lower()
        if "://" in entry:
            parts = urlsplit(entry)
            entry = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        if entry:
            entries.add(entry.replace("[", "").replace("]", "") if entry.count(":") > 1 else entry)
    return frozenset(entries)


def _allowlisted(host: str, port: int, allowlist: frozenset[str]) -> bool:
    return host in allowlist or f"{host}:{port}" in allowlist


@dataclass(frozen=True)
class _Hop:
    url: httpx.URL  # where to connect (the checked address unless the host is allowlisted)
    headers: dict[str, str]
    extensions: dict[str, Any]


def _plan_hop(url: str, param: str, allowlist: frozenset[str]) -> _Hop:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise InvalidInput(param, f"{param} is not a valid URL", code="invalid_url") from None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise InvalidInput(param, f"{param} must be an http or https URL", code="invalid_url")
    host = parsed.raw_host.decode("ascii").lower()
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if _allowlisted(host, port, allowlist):
        return _Hop(parsed, {}, {})
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise InvalidInput(param, f"The host of {param} cannot be resolved", code="invalid_url") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses or not all(is_public_address(a) for a in addresses):
        raise InvalidInput(
            param,
            f"{param} points to a private or reserved network address, which is not allowed",
            code="url_not_allowed",
        )
    # Connect to the checked address; Host and TLS SNI/certificate checks keep the name.
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return _Hop(parsed.copy_with(host=addresses[0]), {"Host": parsed.netloc.decode("ascii")}, extensions)


# --- fetching ----------------------------------------------------------------------------


def fetch_media(
    url: Any, kind: MediaKind, param: str, *, limit: int | None = None, settings: FetchSettings | None = None
) -> Media:
    """GET ``url`` into memory, following up to ``max_redirects`` checked redirects."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(param, f"{param} must be a non-empty URL", code="invalid_url")
    settings = settings or FetchSettings.from_env()
    limit = limit or max_bytes(kind)
    allowlist = allowlist_from_env()
    deadline = time.monotonic() + settings.total_timeout_s
    timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    headers = {"Accept": _ACCEPT[kind], "Accept-Encoding": "identity", "User-Agent": "dryAPI-handler/0.1"}
    current = url.strip()
    # trust_env=False: a proxy from the environment would connect for us, unchecked.
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, headers=headers) as client:
        for _ in range(settings.max_redirects + 1):
            hop = _plan_hop(current, param, allowlist)
            try:
                with client.stream("GET", hop.url, headers=hop.headers, extensions=hop.extensions) as response:
                    if response.has_redirect_location:
                        current = urljoin(current, response.headers["location"])
                        continue
                    _check_status(response.status_code, param)
                    data = _read_body(response, kind, param, limit, deadline)
                    content_type = response.headers.get("content-type")
            except httpx.TimeoutException:
                raise HandlerError(f"Fetching {param} timed out", code="media_fetch_timeout", param=param) from None
            except httpx.HTTPError as exc:
                raise HandlerError(
                    f"Fetching {param} failed ({type(exc).__name__})", code="media_fetch_failed", param=param
                ) from None
            fmt = check_format(data, kind, param, content_type=content_type, name=urlsplit(current).path)
            return Media(data, content_type, fmt)
    raise InvalidInput(param, f"{param} redirected more than {settings.max_redirects} times", code="too_many_redirects")


def _check_status(status: int, param: str) -> None:
    if 200 <= status < 300:
        return
    message = f"Fetching {param} failed: the server answered HTTP {status}"
    if 400 <= status < 500:
        # The client's URL is wrong or not public: a 400 the client can fix.
        raise InvalidInput(param, message, code="media_fetch_failed")
    raise HandlerError(message, code="media_fetch_failed", param=param)


def _read_body(response: httpx.Response, kind: MediaKind, param: str, limit: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(param, kind, limit)  # honest servers are refused before any body is read
    body = bytearray()
    for chunk in response.iter_bytes():  # as received: a chunk size would buffer past the deadline
        body += chunk
        if len(body) > limit:
            raise _too_large(param, kind, limit)
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("total fetch time exceeded")
    return bytes(body)
