"""Signed URLs: one signing domain per kind, and anything but a hex signature simply fails."""

from __future__ import annotations

import time

import pytest

from app.signing import Signer


def test_a_signature_verifies_for_its_own_kind_only() -> None:
    signer = Signer("s")
    expires, signature = signer.sign_expiring("result", "job_1", 60)
    assert signer.verify_expiring("result", "job_1", expires, signature)
    assert not signer.verify_expiring("file", "job_1", expires, signature)
    assert not signer.verify_expiring("file", "result:job_1", expires, signature)
    callback = signer.sign("runpod-callback", "nonce")
    assert signer.verify(callback, "runpod-callback", "nonce")
    assert not signer.verify(callback, "file", "nonce")


def test_parts_cannot_be_shifted_between_fields() -> None:
    signer = Signer("s")
    assert signer.sign("file", "a.b", "c") != signer.sign("file", "a", "b.c")


@pytest.mark.parametrize("signature", ["ëo", "\u2603" * 64, "", "0" * 63 + "\udcff"])
def test_a_non_hex_signature_is_refused_not_raised(signature: str) -> None:
    assert not Signer("s").verify_expiring("file", "file_1", int(time.time()) + 60, signature)


def test_an_expired_link_is_refused() -> None:
    signer = Signer("s")
    expires, signature = signer.sign_expiring("file", "file_1", -1)
    assert not signer.verify_expiring("file", "file_1", expires, signature)


def test_another_secret_does_not_verify() -> None:
    expires, signature = Signer("a").sign_expiring("file", "file_1", 60)
    assert not Signer("b").verify_expiring("file", "file_1", expires, signature)
