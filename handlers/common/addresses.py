"""The one SSRF address rule, shared by the gateway (webhooks, ``audioUrl``) and the workers (media fetches).

An allow-list: only globally routable unicast addresses pass (``ipaddress``'s ``is_global``),
so new special-purpose ranges (carrier-grade NAT 100.64.0.0/10, benchmarking, documentation…)
are refused without a list to keep current. IPv6 forms that carry an IPv4 address (mapped,
6to4, NAT64 ``64:ff9b::/96``, IPv4-compatible ``::a.b.c.d``, Teredo) reach that IPv4 host, so
that host is judged.

Standard library only: the worker images ship ``handlers/common`` without the gateway's
dependencies, and the gateway's package includes ``handlers``.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Globally routable, yet cloud providers answer instance metadata (and credentials) there.
_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 host an IPv6 address reaches through a translation form, if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # (server, client): packets go to the client
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(address: str | IPAddress) -> bool:
    """True for a globally routable unicast address that is no cloud-metadata endpoint.

    Raises ``ValueError`` for text that is no IP address.
    """
    ip = ipaddress.ip_address(address.split("%")[0] if isinstance(address, str) else address)
    if isinstance(ip, ipaddress.IPv6Address):
        ip = embedded_ipv4(ip) or ip
    return ip.is_global and not ip.is_multicast and ip not in _METADATA


__all__ = ["embedded_ipv4", "is_public_address"]
