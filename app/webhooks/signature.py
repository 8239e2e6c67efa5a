"""The seed's webhook signature: ``sha256=<hex HMAC-SHA256(secret, "{timestamp}.{raw_body}")>``.

Receivers verify with the raw request body (never a re-serialised one) and reject
timestamps more than five minutes from their own clock (replay protection).
"""

from __future__ import annotations

import hashlib
import hmac
import time

PREFIX = "sha256="


def sign(secret: str, timestamp: str, raw_body: bytes) -> str:
    """The ``X-DryAPI-Signature`` value for one attempt."""
    message = timestamp.encode() + b"." + raw_body
    return PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: str,
    raw_body: bytes,
    header: str,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> bool:
    """True when ``header`` signs ``raw_body`` at ``timestamp`` under ``secret`` and the timestamp is fresh."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s:
        return False
    return hmac.compare_digest(header.encode(), sign(secret, timestamp, raw_body).encode())
