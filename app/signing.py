"""HMAC signatures for URLs the gateway hands out (media files, result links, RunPod callbacks).

Each kind of signed URL is its own signing domain: the kind is the first part of every signed
message, so a signature issued for one kind never verifies as another (a result link's
signature is no file link, whatever the ids look like).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Literal

SignedKind = Literal["file", "result", "runpod-callback"]
# Separates the parts of a signed message; ids never contain it, so parts cannot be shifted.
_SEPARATOR = b"\x00"


class Signer:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def sign(self, kind: SignedKind, *parts: str) -> str:
        message = _SEPARATOR.join(part.encode("utf-8", "surrogatepass") for part in (kind, *parts))
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def verify(self, signature: str, kind: SignedKind, *parts: str) -> bool:
        # A signature is hex: anything else (non-ASCII above all, which compare_digest refuses
        # with a TypeError) is simply a wrong signature.
        if not signature.isascii():
            return False
        return hmac.compare_digest(self.sign(kind, *parts), signature)

    def sign_expiring(self, kind: SignedKind, resource: str, ttl_s: int) -> tuple[int, str]:
        expires = int(time.time()) + ttl_s
        return expires, self.sign(kind, resource, str(expires))

    def verify_expiring(self, kind: SignedKind, resource: str, expires: int, signature: str) -> bool:
        return expires >= int(time.time()) and self.verify(signature, kind, resource, str(expires))
