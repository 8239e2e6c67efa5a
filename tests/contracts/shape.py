"""Structural comparison used by both sides of the handler contract.

A fixture in ``tests/contracts/<surface>.json`` pins an example handler output; the handler
tests check that real outputs have the same shape, and the gateway's adapter tests convert
the example into OpenAI's shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from handlers.common.errors import decode_error

CONTRACTS = Path(__file__).parent


def load_contract(surface: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONTRACTS / f"{surface}.json").read_text())
    return data


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def assert_same_shape(actual: Any, example: Any, path: str = "$") -> None:
    """Every key of ``example`` is in ``actual`` with the same JSON kind, recursively.

    Lists compare their first elements; ``null`` in the example admits any value.
    """
    if example is None:
        return
    assert _kind(actual) == _kind(example), f"{path}: expected {_kind(example)}, got {_kind(actual)}"
    if isinstance(example, dict):
        for key, sub in example.items():
            assert key in actual, f"{path}: missing key {key!r}"
            assert_same_shape(actual[key], sub, f"{path}.{key}")
    elif isinstance(example, list) and example:
        assert actual, f"{path}: expected a non-empty list"
        assert_same_shape(actual[0], example[0], f"{path}[0]")


def check_contract_case(case: dict[str, Any], outputs: list[Any]) -> None:
    """A fixture case's real outputs against its example (same keys, same JSON kinds)."""
    if "error" in case:
        error = decode_error(outputs[-1])
        assert error is not None, outputs
        for key, value in case["error"].items():
            assert error[key] == value
        return
    assert len(outputs) == 1 and "error" not in outputs[0], outputs
    assert_same_shape(outputs[0], case["output"])
