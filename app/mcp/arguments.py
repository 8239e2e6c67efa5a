"""A tool call's arguments as a native task body: plain fields, and files read from the
strings an agent can send (a data URI, base64, or an http(s) URL the gateway fetches).

A URL passes the gateway's SSRF check (``app/netguard.py``) and is read without following
redirects (a redirect could point anywhere) and only up to its field's size cap.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import httpx

from app.errors import GatewayError
from app.files import decode_data_uri
from app.native.body import TaskBody
from app.netguard import check_url
from app.tasks.spec import FileRule, TaskSpec

_FETCH_TIMEOUT_S = 30.0


class _TooLarge(Exception):
    pass


async def _fetch(url: str, rule: FileRule, allowlist: frozenset[str]) -> bytes:
    await check_url(url, param=rule.name, allowlist=allowlist, require_https=False)
    async with (
        httpx.AsyncClient(timeout=_FETCH_TIMEOUT_S, follow_redirects=False) as client,
        client.stream("GET", url) as response,
    ):
        if response.status_code != 200:
            raise GatewayError(f"fetching it answered HTTP {response.status_code}")
        data = bytearray()
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > rule.max_bytes:
                raise _TooLarge
        return bytes(data)


async def _read_file(value: Any, rule: FileRule, allowlist: frozenset[str]) -> bytes | str:
    """The file's bytes, or why it cannot be read."""
    if not isinstance(value, str) or not value:
        return f"The {rule.name} field must be a URL, a data URI or base64 content."
    if value.startswith(("http://", "https://")):
        try:
            return await _fetch(value, rule, allowlist)
        except _TooLarge:
            return f"The {rule.name} may not be larger than {rule.max_bytes // 1048576} MB."
        except GatewayError as exc:
            return f"The {rule.name} URL cannot be used: {exc.message}"
        except httpx.HTTPError:
            return f"The {rule.name} URL cannot be fetched."
    decoded = decode_data_uri(value)
    if decoded is not None:
        return decoded[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return f"The {rule.name} field must be a URL, a data URI or base64 content."


async def task_body(spec: TaskSpec, arguments: dict[str, Any], allowlist: frozenset[str]) -> TaskBody:
    """``arguments`` split into fields and files; unreadable files become field errors."""
    fields = dict(arguments)
    body = TaskBody()
    for rule in spec.files:
        if rule.name not in fields:
            continue
        raw = fields.pop(rule.name)
        values = raw if isinstance(raw, list) else [raw]
        for value in values[: rule.many + 1]:  # one past the cap: check_files names the excess
            read = await _read_file(value, rule, allowlist)
            if isinstance(read, str):
                body.errors.append((rule.name, read))
                break
            body.files.setdefault(rule.name, []).append(read)
    body.fields = fields
    return body
