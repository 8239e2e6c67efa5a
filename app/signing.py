"""HMAC signatures for URLs the gateway hands out (media files, RunPod callbacks)."""

from __future__ import annotations

import hashlib
import hmac
import time


class Signer:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def sign(self, *parts: str) -> str:
        message = ".".join(parts).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def verify(self, signature: str, *parts: str) -> bool:
        return hmac.compare_digest(self.sign(*parts), signature)

    def sign_expiring(self, resource: str, ttl_s: int) -> tuple[int, str]:
        expires = int(time.time()) + ttl_s
        return expires, self.sign(resource, str(expires))

    def verify_expiring(self, resource: str, expires: int, signature: str) -> bool:
        return expires >= int(time.time()) and self.verify(signature, resource, str(expires))
