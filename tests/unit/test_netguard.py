"""The one SSRF rule: which addresses the gateway and the workers may connect to."""

from __future__ import annotations

import pytest

from app.errors import InvalidRequest
from app.netguard import check_url
from app.netguard import is_public_address as gateway_rule
from handlers.common.addresses import is_public_address
from handlers.common.media import is_public_address as worker_rule

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local metadata"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.100.100.200", "cloud metadata in shared space"),
    ("198.18.0.1", "benchmarking"),
    ("192.0.2.1", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.1.1.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1%eth0", "link-local with zone"),
    ("fc00::1", "unique local"),
    ("fd00:ec2::254", "metadata"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("2002:7f00:1::", "6to4 of 127.0.0.1"),
    ("2002:a9fe:a9fe::", "6to4 of 169.254.169.254"),
    ("64:ff9b::7f00:1", "NAT64 of 127.0.0.1"),
    ("64:ff9b::6464:64c8", "NAT64 of 100.100.100.200"),
    ("::7f00:1", "IPv4-compatible 127.0.0.1"),
    ("::a00:1", "IPv4-compatible 10.0.0.1"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
]

ALLOWED = [
    ("8.8.8.8", "public IPv4"),
    ("1.1.1.1", "public IPv4"),
    ("93.184.216.34", "public IPv4"),
    ("2606:4700:4700::1111", "public IPv6"),
    ("::ffff:8.8.8.8", "IPv4-mapped public"),
    ("64:ff9b::808:808", "NAT64 of a public address"),
    ("2002:808:808::", "6to4 of a public address"),
]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_refused(address: str, why: str) -> None:
    assert not is_public_address(address), why


@pytest.mark.parametrize(("address", "why"), ALLOWED)
def test_allowed(address: str, why: str) -> None:
    assert is_public_address(address), why


def test_gateway_and_workers_share_the_rule() -> None:
    assert gateway_rule is is_public_address
    assert worker_rule is is_public_address


def test_not_an_address_raises() -> None:
    with pytest.raises(ValueError):
        is_public_address("example.com")


@pytest.mark.parametrize("host", ["100.64.0.1", "100.100.100.200", "[2002:7f00:1::]", "[64:ff9b::a00:1]", "[::7f00:1]"])
async def test_check_url_refuses_literal_hosts(host: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await check_url(f"https://{host}/hook", param="webhook_url", allowlist=frozenset(), require_https=True)
    assert caught.value.param == "webhook_url"
    assert caught.value.code == "url_not_allowed"


async def test_check_url_allows_allowlisted_host() -> None:
    await check_url("http://127.0.0.1:9/x", param="audioUrl", allowlist=frozenset({"127.0.0.1"}), require_https=True)
