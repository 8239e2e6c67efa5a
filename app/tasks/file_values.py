"""A file field given as a string: a data URI, base64 content, or an http(s) URL the gateway
fetches (MCP tool arguments, OpenRouter's image parts).

A URL passes the gateway's SSRF check (``app/netguard.py``) and is read without following
redirects (a redirect could point anywhere) and only up to the field's size cap.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import httpx

from app.errors import GatewayError
from app.files import decode_data_uri
from app.netguard import check_url

_FETCH_TIMEOUT_S = 30.0


class _TooLarge(Exception):
    pass


async def _fetch(url: str, name: str, max_bytes: int, allowlist: frozenset[str]) -> bytes:
    await check_url(url, param=name, allowlist=allowlist, require_https=False)
    async with (
        httpx.AsyncClient(timeout=_FETCH_TIMEOUT_S, follow_redirects=False) as client,
        client.stream("GET", url) as response,
    ):
        if response.status_code != 200:
            raise GatewayError(f"fetching it answered HTTP {response.status_code}")
        data = bytearray()
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > max_bytes:
                raise _TooLarge
        return bytes(data)


async def read_file_value(value: Any, name: str, max_bytes: int, allowlist: frozenset[str]) -> bytes | str:
    """The file's bytes, or a sentence naming ``name`` that says why it cannot be read."""
    if not isinstance(value, str) or not value:
        return f"The {name} field must be a URL, a data URI or base64 content."
    if value.startswith(("http://", "https://")):
        try:
            return await _fetch(value, name, max_bytes, allowlist)
        except _TooLarge:
            return f"The {name} may not be larger than {max_bytes // 1048576} MB."
        except GatewayError as exc:
            return f"The {name} URL cannot be used: {exc.message}"
        except httpx.HTTPError:
            return f"The {name} URL cannot be fetched."
    decoded = decode_data_uri(value)
    if decoded is not None:
        return decoded[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return f"The {name} field must be a URL, a data URI or base64 content."
