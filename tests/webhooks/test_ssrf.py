"""SSRF at delivery: refused destinations never reach a socket; allowed ones are connected to by checked IP."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.webhooks.delivery import system_resolver
from tests.support.servers import ServerThread, serve
from tests.webhooks.conftest import OutboxFactory, eventually, running
from tests.webhooks.receiver import Receiver

DATA = {"job_request_id": "j", "status": "done", "previous_status": "processing", "job_type": "chat"}

FAKE_DNS = {
    "private.example.test": ["192.168.1.10"],
    "rebind.example.test": ["93.184.216.34", "10.0.0.5"],  # one public answer does not make it safe
    "hooks.example.test": ["127.0.0.1"],
    "evil.example.test": ["127.0.0.1"],
    "xn--bcher-kva.example.test": ["172.16.0.9"],  # bücher.example.test, resolved in its IDNA form
}


async def fake_resolver(host: str, port: int) -> Sequence[str]:
    if host in FAKE_DNS:
        return FAKE_DNS[host]
    return await system_resolver(host, port)


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request httpx is asked to send (none may be sent for a refused destination)."""
    calls: list[str] = []
    original = httpx.AsyncClient.send

    async def counting(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        calls.append(str(request.url))
        return await original(self, request, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "send", counting)
    return calls


REFUSED = [
    ("https://127.0.0.1:{port}/{token}/ok", "address_not_allowed"),
    ("https://localhost:{port}/{token}/ok", "address_not_allowed"),
    ("https://10.1.2.3/{token}/ok", "address_not_allowed"),
    ("https://169.254.169.254/latest/meta-data/", "address_not_allowed"),
    ("https://[::1]:{port}/{token}/ok", "address_not_allowed"),
    ("https://[::ffff:127.0.0.1]:{port}/{token}/ok", "address_not_allowed"),
    ("https://100.64.0.1/{token}/ok", "address_not_allowed"),  # carrier-grade NAT
    ("https://100.100.100.200/latest/meta-data/", "address_not_allowed"),  # a cloud metadata address
    ("https://[2002:7f00:1::]:{port}/{token}/ok", "address_not_allowed"),  # 6to4 form of 127.0.0.1
    ("https://[64:ff9b::7f00:1]:{port}/{token}/ok", "address_not_allowed"),  # NAT64 form of 127.0.0.1
    ("https://private.example.test/{token}/ok", "address_not_allowed"),
    ("https://rebind.example.test/{token}/ok", "address_not_allowed"),
    ("https://b\u00fccher.example.test/{token}/ok", "address_not_allowed"),
    ("http://127.0.0.1:{port}/{token}/ok", "https_required"),
    ("http://example.com/{token}/ok", "https_required"),
    ("file:///etc/passwd", "invalid_url"),
    ("gopher://127.0.0.1:{port}/", "invalid_url"),
]


@pytest.mark.parametrize(("template", "reason"), REFUSED)
async def test_refused_destinations_never_reach_a_socket(
    make_outbox: OutboxFactory,
    receiver: tuple[Receiver, ServerThread],
    token: str,
    sends: list[str],
    template: str,
    reason: str,
) -> None:
    app, server = receiver
    outbox = make_outbox(schedule=(0,), allowlist=frozenset(), resolver=fake_resolver)
    url = template.format(port=server.port, token=token)
    async with running(outbox):
        delivery_id = await outbox.enqueue(key_id="key_a", url=url, event="job.completed", data=DATA)
        await eventually(lambda: outbox.stats["dead"] == 1)
    assert sends == []
    assert app.at(token) == []
    record = await outbox.delivery(delivery_id)
    assert record is not None
    assert (record["state"], record["last_error"]) == ("dead", reason)
    assert (outbox.stats["refused"], outbox.stats["failed_attempt"]) == (1, 0)


async def test_a_refused_address_is_a_failed_attempt_and_retried(
    make_outbox: OutboxFactory, token: str, sends: list[str]
) -> None:
    outbox = make_outbox(schedule=(0, 0.05, 0.05), allowlist=frozenset(), resolver=fake_resolver)
    async with running(outbox):
        delivery_id = await outbox.enqueue(
            key_id="key_a", url=f"https://private.example.test/{token}", event="job.completed", data=DATA
        )
        await eventually(lambda: outbox.stats["dead"] == 1)
    record = await outbox.delivery(delivery_id)
    assert record is not None and (record["attempts"], record["last_error"]) == (3, "address_not_allowed")
    assert outbox.stats["refused"] == 3 and sends == []


async def test_connects_to_the_checked_address_with_the_original_host(
    make_outbox: OutboxFactory, receiver: tuple[Receiver, ServerThread], token: str, sends: list[str]
) -> None:
    app, server = receiver
    outbox = make_outbox(allowlist=frozenset({"hooks.example.test"}), resolver=fake_resolver)
    async with running(outbox):
        await outbox.enqueue(
            key_id="key_a",
            url=f"http://hooks.example.test:{server.port}/{token}/ok?t=1",
            event="job.completed",
            data=DATA,
        )
        await eventually(lambda: outbox.stats["delivered"] == 1)
    [arrival] = app.at(token)
    assert arrival.headers["host"] == f"hooks.example.test:{server.port}"
    assert sends == [f"http://127.0.0.1:{server.port}/{token}/ok?t=1"]


def _tls_files(directory: Path, hostname: str) -> tuple[Path, Path, Path]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dryapi test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, cert_path, key_path


async def test_https_uses_the_hostname_for_sni_and_certificate_checks(
    make_outbox: OutboxFactory, token: str, tmp_path: Path
) -> None:
    ca_path, cert_path, key_path = _tls_files(tmp_path, "hooks.example.test")
    context = ssl.create_default_context(cafile=str(ca_path))
    app = Receiver()
    with serve(app, ssl_certfile=str(cert_path), ssl_keyfile=str(key_path)) as server:
        outbox = make_outbox(
            schedule=(0,),
            allowlist=frozenset({"hooks.example.test", "evil.example.test"}),
            resolver=fake_resolver,
            ssl_context=context,
        )
        async with running(outbox):
            good = await outbox.enqueue(
                key_id="key_a", url=f"https://hooks.example.test:{server.port}/{token}/ok", event="e", data=DATA
            )
            # Same IP, but the certificate is not for this name: the TLS check must fail.
            bad = await outbox.enqueue(
                key_id="key_a", url=f"https://evil.example.test:{server.port}/{token}/ok", event="e", data=DATA
            )
            await eventually(lambda: outbox.stats["delivered"] == 1 and outbox.stats["dead"] == 1)
    [arrival] = app.at(token)
    assert arrival.delivery_id == good
    assert arrival.headers["host"] == f"hooks.example.test:{server.port}"
    record = await outbox.delivery(bad)
    assert record is not None and (record["state"], record["last_error"]) == ("dead", "connect_error")
