"""A tool call's arguments as a native task body: plain fields, and files read from the
strings an agent can send (``app/tasks/file_values.py``: a data URI, base64, or a URL)."""

from __future__ import annotations

from typing import Any

from app.native.body import TaskBody
from app.tasks.file_values import read_file_value
from app.tasks.spec import TaskSpec


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
            read = await read_file_value(value, rule.name, rule.max_bytes, allowlist)
            if isinstance(read, str):
                body.errors.append((rule.name, read))
                break
            body.files.setdefault(rule.name, []).append(read)
    body.fields = fields
    return body
