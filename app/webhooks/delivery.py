"""One webhook attempt over HTTP, with the SSRF checks applied to the address actually used.

The destination host is resolved here, every address is checked (private, loopback,
link-local, metadata and other reserved ranges are refused unless the host is
allowlisted), and the request goes to the checked IP itself with the original ``Host``
header and, for https, the original hostname as TLS SNI and certificate identity, so a
DNS answer that changes between check and connect (rebinding) cannot redirect it.
Redirects are never followed, proxies from the environment are never used, and
connections are never reused across attempts (a pooled TLS connection is bound to the
hostname it was verified for).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from urllib.parse import SplitResult, urlsplit

import httpx
import msgspec

from app.netguard import is_public_address

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


class AttemptResult(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    status: int | None = None
    # "" on success; otherwise a short reason safe to log (never a URL or payload).
    error: str = ""
    # The SSRF guard stopped it before any socket was opened.
    refused: bool = False
    # Retrying cannot help (bad scheme, plain http to a host that is not allowlisted).
    permanent: bool = False


class _Refused(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class _Target(msgspec.Struct, frozen=True):
    scheme: str
    host: str
    port: int
    host_header: str
    userinfo: str
    path: str
    allowlisted: bool


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_allowlisted(host: str, port: int | None, allowlist: frozenset[str]) -> bool:
    """The same rule as ``app.netguard.check_url``: the host, or ``host:port`` with an explicit port."""
    return host in allowlist or (port is not None and f"{host}:{port}" in allowlist)


def _target(url: str, allowlist: frozenset[str]) -> _Target:
    try:
        parts: SplitResult = urlsplit(url)
        explicit_port = parts.port
    except ValueError:
        raise _Refused("invalid_url", permanent=True) from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise _Refused("invalid_url", permanent=True)
    allowlisted = is_allowlisted(host, explicit_port, allowlist)
    if scheme != "https" and not allowlisted:
        raise _Refused("https_required", permanent=True)
    if _ip_literal(host) is None:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise _Refused("invalid_url", permanent=True) from None
    authority = f"[{host}]" if ":" in host else host
    host_header = authority if explicit_port is None else f"{authority}:{explicit_port}"
    userinfo = parts.netloc.rpartition("@")[0]
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(
        scheme=scheme,
        host=host,
        port=explicit_port or (443 if scheme == "https" else 80),
        host_header=host_header,
        userinfo=userinfo,
        path=path,
        allowlisted=allowlisted,
    )


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


class Sender:
    """Posts webhook bodies; one per outbox worker loop."""

    def __init__(
        self,
        *,
        timeout_s: float,
        allowlist: frozenset[str],
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 32,
    ) -> None:
        self._timeout_s = timeout_s
        self._allowlist = allowlist
        self._resolve = resolver or system_resolver
        self._client = httpx.AsyncClient(
            verify=ssl_context if ssl_context is not None else True,
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=0),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> AttemptResult:
        try:
            async with asyncio.timeout(self._timeout_s):
                target = _target(url, self._allowlist)
                addresses = await self._addresses(target)
                return await self._send(target, addresses, headers, body)
        except _Refused as refused:
            return AttemptResult(ok=False, error=refused.reason, refused=True, permanent=refused.permanent)
        except TimeoutError:
            return AttemptResult(ok=False, error="timeout")
        except Exception as exc:  # e.g. a URL httpx cannot express: a failed attempt, never a crash
            return AttemptResult(ok=False, error=type(exc).__name__)

    async def _addresses(self, target: _Target) -> list[str]:
        literal = _ip_literal(target.host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = list(await self._resolve(target.host, target.port))
            except OSError:
                raise _Refused("dns_error", permanent=False) from None
            if not addresses:
                raise _Refused("dns_error", permanent=False)
        if not target.allowlisted and not all(_public(address) for address in addresses):
            raise _Refused("address_not_allowed", permanent=False)
        return addresses

    async def _send(
        self, target: _Target, addresses: list[str], headers: Mapping[str, str], body: bytes
    ) -> AttemptResult:
        extensions = {}
        if target.scheme == "https" and _ip_literal(target.host) is None:
            extensions["sni_hostname"] = target.host
        error = "connect_error"
        for address in addresses:
            ip = address.split("%")[0]
            netloc = f"[{ip}]" if ":" in ip else ip
            if target.userinfo:
                netloc = f"{target.userinfo}@{netloc}"
            request = self._client.build_request(
                "POST",
                f"{target.scheme}://{netloc}:{target.port}{target.path}",
                headers={**headers, "Host": target.host_header},
                content=body,
                extensions=extensions,
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.ConnectError:
                continue  # nothing was sent: the next checked address may answer
            except httpx.TimeoutException:
                return AttemptResult(ok=False, error="timeout")
            except httpx.HTTPError as exc:
                return AttemptResult(ok=False, error=type(exc).__name__)
            status = response.status_code
            await response.aclose()  # the body is never read
            if 200 <= status < 300:
                return AttemptResult(ok=True, status=status)
            kind = "redirect" if 300 <= status < 400 else "http"
            return AttemptResult(ok=False, status=status, error=f"{kind}_{status}")
        return AttemptResult(ok=False, error=error)


def _public(address: str) -> bool:
    try:
        return is_public_address(address)
    except ValueError:
        return False
