"""A native task's body, whatever encoding the client chose (reference §1.3).

JSON, ``multipart/form-data`` and ``application/x-www-form-urlencoded`` all become one flat
field map plus the uploaded files. Form bodies bring their own spellings: ``images[]`` for a
repeated file, ``loras[0][name]`` (the SDK) or a JSON string (the MCP server) for LoRAs; JSON
bodies may carry a file as base64 or a data URI (the MCP server does for uploads).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import UploadFile

from app.errors import InvalidRequest
from app.files import decode_data_uri
from app.multipart import read_form
from app.tasks.spec import TaskSpec
from app.tasks.validation import FieldErrors

_NESTED = re.compile(r"^(?P<name>\w+)\[(?P<index>\d+)\]\[(?P<key>\w+)\]$")
_MAX_FIELDS = 200


@dataclass
class TaskBody:
    fields: dict[str, Any] = field(default_factory=dict)
    files: dict[str, list[bytes]] = field(default_factory=dict)
    errors: FieldErrors = field(default_factory=list)


def _decode_json(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise InvalidRequest("The request body is not valid JSON", code="invalid_json") from None
    except RecursionError:
        raise InvalidRequest("The request body nests too deeply", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object", code="invalid_json")
    return body


def _nest(fields: dict[str, Any]) -> dict[str, Any]:
    """``loras[0][name]=a&loras[0][weight]=0.8`` → ``loras: [{"name": "a", "weight": "0.8"}]``;
    ``loras='[{"name": "a"}]'`` → the decoded list."""
    nested: dict[str, dict[int, dict[str, Any]]] = {}
    flat: dict[str, Any] = {}
    for key, value in fields.items():
        match = _NESTED.match(key)
        if match:
            nested.setdefault(match["name"], {}).setdefault(int(match["index"]), {})[match["key"]] = value
        else:
            flat[key] = value
    for name, items in nested.items():
        flat[name] = [items[index] for index in sorted(items)]
    loras = flat.get("loras")
    if isinstance(loras, str) and loras.strip().startswith("["):
        with contextlib.suppress(msgspec.DecodeError):  # else left a string: validation names it
            flat["loras"] = msgspec.json.decode(loras)
    return flat


def _inline_file(value: Any) -> bytes | None:
    """A file sent inside a JSON body: a data URI or plain base64."""
    if not isinstance(value, str) or not value:
        return None
    decoded = decode_data_uri(value)
    if decoded is not None:
        return decoded[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


async def read_task_body(request: Request[Any, Any, Any], spec: TaskSpec) -> TaskBody:
    media_type = request.content_type[0]
    body = TaskBody()
    file_names = {rule.name for rule in spec.files}
    if media_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await read_form(request) if media_type == "multipart/form-data" else await request.form()
        fields: dict[str, Any] = {}
        for key, value in form.multi_items():
            name = key.removesuffix("[]")
            if isinstance(value, UploadFile):
                if name in file_names:
                    body.files.setdefault(name, []).append(await value.read())
                await value.close()
            elif name in file_names:
                body.errors.append((name, f"The {name} field must be a file."))
            elif len(fields) < _MAX_FIELDS:
                fields[key] = value
        body.fields = _nest(fields)
    else:
        fields = _decode_json(await request.body())
        for name in file_names:
            if name in fields:
                raw = fields.pop(name)
                values = raw if isinstance(raw, list) else [raw]
                decoded = [_inline_file(value) for value in values]
                if any(item is None for item in decoded):
                    body.errors.append((name, f"The {name} field must be a file (base64 or a data URI)."))
                else:
                    body.files[name] = [item for item in decoded if item is not None]
        body.fields = fields
    return body
