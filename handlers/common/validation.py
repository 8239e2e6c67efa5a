"""Input validation: a msgspec Struct per handler input, errors naming the field.

``parse_input(job["input"], MyInput)`` returns the Struct or raises ``InvalidInput`` whose
``param`` is the dotted path of the bad field (``messages.0.role``), so the gateway can
answer a 400 that names it.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from handlers.common.errors import InvalidInput

T = TypeVar("T")

_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def _param_from_path(path: str) -> str:
    # msgspec writes `$.a[0].b`; clients know the field as `a.0.b`.
    return re.sub(r"\[(\d+)\]", r".\1", path).lstrip(".")


def parse_input(raw: Any, schema: type[T], *, root: str | None = None) -> T:
    """Convert the job's raw input into ``schema`` or raise ``InvalidInput`` naming the field."""
    if not isinstance(raw, dict):
        raise InvalidInput(root or "input", "input must be a JSON object")
    try:
        return msgspec.convert(raw, schema, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH.search(text)
        message = text[: match.start()] if match else text
        param = _param_from_path(match.group("path")) if match else ""
        if not param:
            # msgspec reports a missing or unknown field at the object level.
            field = re.search(r"field `([^`]+)`", text)
            param = field.group(1) if field else ""
        if root:
            param = f"{root}.{param}" if param else root
        raise InvalidInput(param or "input", f"{message} ({param or 'input'})") from None
