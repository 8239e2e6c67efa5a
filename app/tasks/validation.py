"""Validating a task's fields with every bad field named, not only the first.

msgspec stops at the first error, but the native API's 422 lists one entry per bad field. So
each field is converted on its own (lax: form bodies send ``"512"`` and ``"1"``/``"true"``),
errors are collected, and the Struct is built only when all fields passed.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

T = TypeVar("T", bound=msgspec.Struct)
FieldErrors = list[tuple[str, str]]

_AT = re.compile(r" - at `\$[^`]*`$")


class InvalidFields(ValueError):
    """Bad request fields: ``errors`` is ``[(field, message), ...]`` in the order found."""

    def __init__(self, errors: FieldErrors) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))
        self.errors = errors


def _message(field: str, exc: msgspec.ValidationError) -> str:
    detail = _AT.sub("", str(exc)).replace(" | null", "")
    detail = detail.replace("Expected `", "expected `").replace("Invalid enum value", "invalid value")
    return f"The {field} field is invalid: {detail}."


@functools.cache
def struct_fields(schema: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """``schema``'s fields, computed once: msgspec re-evaluates the annotations on every call."""
    return msgspec.structs.fields(schema)


def convert_fields(schema: type[T], data: Mapping[str, Any]) -> tuple[T | None, FieldErrors]:
    """``schema`` built from ``data`` (``""`` and ``None`` count as absent), or every bad field.

    Keys ``schema`` does not declare are ignored: clients send extras (``return_result_in_response``
    on tasks without text, the tester's ``limit``), and the worker never sees them.
    """
    errors: FieldErrors = []
    values: dict[str, Any] = {}
    for field in struct_fields(schema):
        raw = data.get(field.encode_name)
        if raw is None or raw == "":
            if field.required:
                errors.append((field.encode_name, f"The {field.encode_name} field is required."))
            continue
        try:
            value = msgspec.convert(raw, field.type, strict=False)
        except msgspec.ValidationError as exc:
            errors.append((field.encode_name, _message(field.encode_name, exc)))
            continue
        if isinstance(value, float) and not math.isfinite(value):
            errors.append((field.encode_name, f"The {field.encode_name} must be a finite number."))
            continue
        values[field.name] = value
    if errors:
        return None, errors
    return schema(**values), []
