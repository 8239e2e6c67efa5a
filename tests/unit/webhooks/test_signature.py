"""app/webhooks/signature.py: the replay window's edges and the raw bytes that are signed.

(tests/webhooks/test_signature.py checks the recipe against the seed's own example.)
"""

from __future__ import annotations

import pytest

from app.webhooks.signature import PREFIX, sign, verify

BODY = '{"event":"job.completed","data":{"text":"naïve café"}}'.encode()


def test_a_signature_is_the_prefix_and_64_hex_digits() -> None:
    header = sign("whsec_x", "1705315800", BODY)
    assert header.startswith(PREFIX)
    assert len(header) == len(PREFIX) + 64 and int(header.removeprefix(PREFIX), 16) >= 0
    assert sign("whsec_x", "1705315800", BODY) == header  # deterministic
    assert sign("whsec_x", "1705315801", BODY) != header


def test_the_raw_bytes_are_signed_not_a_reserialisation() -> None:
    spaced = b'{"event": "job.completed", "data": {"text": "na\\u00efve caf\\u00e9"}}'
    assert sign("s", "1", spaced) != sign("s", "1", BODY)
    assert not verify("s", "1", spaced, sign("s", "1", BODY), now=1)


@pytest.mark.parametrize(("skew", "fresh"), [(0, True), (300, True), (-300, True), (301, False), (-301, False)])
def test_the_timestamp_may_be_five_minutes_either_side(skew: int, fresh: bool) -> None:
    sent = 1_700_000_000
    header = sign("s", str(sent), BODY)
    assert verify("s", str(sent), BODY, header, now=sent + skew) is fresh


@pytest.mark.parametrize("timestamp", ["", "1.5", "abc", "1e9"])
def test_a_timestamp_that_is_not_an_integer_never_verifies(timestamp: str) -> None:
    assert not verify("s", timestamp, BODY, sign("s", timestamp, BODY), now=1)


def test_a_header_that_differs_in_case_or_is_truncated_is_refused() -> None:
    header = sign("s", "100", BODY)
    assert verify("s", "100", BODY, header, now=100)
    assert not verify("s", "100", BODY, header.upper(), now=100)
    assert not verify("s", "100", BODY, header[:-1], now=100)
    assert not verify("s", "100", BODY, "", now=100)
