"""Refuse URLs that would make the gateway reach into private networks (SSRF).

Client-supplied URLs (``audioUrl``, ``webhook_url``) must be http(s) and must not resolve
to anything but a globally routable address (the one rule, ``handlers.common.addresses``,
which the workers apply to media URLs too).
Operators may allowlist hosts (local development, tests); an allowlisted host may also use
plain http where https is otherwise required.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

from app.errors import InvalidRequest
from handlers.common.addresses import is_public_address


def _allowed(host: str, port: int | None, allowlist: frozenset[str]) -> bool:
    return host in allowlist or (port is not None and f"{host}:{port}" in allowlist)


async def check_url(url: str, *, param: str, allowlist: frozenset[str], require_https: bool) -> None:
    """Raise a 400 naming ``param`` unless ``url`` is safe to fetch or post to."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidRequest(f"{param} is not a valid URL", param=param) from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidRequest(f"{param} must be an http(s) URL", param=param, code="invalid_url")
    if _allowed(host, port, allowlist):
        return
    if require_https and parts.scheme != "https":
        raise InvalidRequest(f"{param} must use https", param=param, code="invalid_url")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except OSError:
        raise InvalidRequest(f"{param} host cannot be resolved", param=param, code="invalid_url") from None
    except UnicodeError:  # the resolver's IDNA encoding refuses the name (empty or > 63-char label)
        raise InvalidRequest(f"{param} host is not a valid host name", param=param, code="invalid_url") from None
    if not infos or not all(is_public_address(str(info[4][0])) for info in infos):
        raise InvalidRequest(
            f"{param} resolves to a private or reserved address, which is not allowed",
            param=param,
            code="url_not_allowed",
        )


__all__ = ["check_url", "is_public_address"]
