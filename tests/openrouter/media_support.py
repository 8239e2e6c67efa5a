"""Helpers for the OpenRouter media tests: a tenant (one fresh key with the official
``openrouter`` SDK, the ``openai`` SDK and raw HTTP), a real WAV, and the field an error names."""

from __future__ import annotations

import base64
import io
import math
import struct
import wave
from typing import Any

import httpx
import openai
from openrouter import OpenRouter
from openrouter.utils import BackoffStrategy, RetryConfig

from tests.billing.conftest import INITIAL_USD, Client, new_key
from tests.gateway.conftest import Gateway

NO_RETRIES = RetryConfig("none", BackoffStrategy(1, 1, 1, 1), False)


class Tenant:
    """One fresh key with the starting balance: the OpenRouter SDK, the openai SDK, raw HTTP."""

    def __init__(self, gateway: Gateway) -> None:
        key, key_id = new_key(gateway)
        self.key = key
        self.account = Client(gateway, key, key_id)
        self.sdk = OpenRouter(api_key=key, server_url=f"{gateway.url}/api/v1", retry_config=NO_RETRIES,
                              timeout_ms=30_000)
        self.openai = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
        self.http = httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def spent(self) -> float:
        return round(INITIAL_USD - self.account.balance(), 6)

    def close(self) -> None:
        self.account.http.close()
        self.http.close()
        self.openai.close()


def wav_bytes(seconds: float = 0.25, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", int(9000 * math.sin(i / 5))) for i in range(int(seconds * rate))))
    return buffer.getvalue()


def inline(audio: bytes) -> Any:
    """OpenRouter's inline ``input_audio`` (the SDK's typed dict spells ``format`` as ``format_``)."""
    return {"data": base64.b64encode(audio).decode(), "format": "wav"}


def error_param(response: httpx.Response) -> str | None:
    """The field an error names, in OpenAI's shape (``param``) or OpenRouter's (``metadata.param``)."""
    error: dict[str, Any] = response.json()["error"]
    param = error.get("param") or (error.get("metadata") or {}).get("param")
    return str(param) if param is not None else None
