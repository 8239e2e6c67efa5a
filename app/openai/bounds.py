"""How big a /v1 request's numbers and lists may be: the caps, in one place, and the check for
the values the gateway passes to workers without knowing them.

Every cap is far above what any real request needs and far below what would cost a worker (or
the gateway) real memory or time; a value past one cannot mean anything to a model:

- ``INT64``: integers that reach a worker must fit the int64 its runtime parses them into
  (``seed`` included); anything wider overflows there.
- ``MAX_TOKENS`` (2**24, ~16.8M): above the largest context window served today (~10M tokens).
- ``MAX_DIMENSIONS`` (65,536): embedding widths are at most a few thousand.
- ``MAX_TOKEN_ID`` (2**31 - 1): tokenizers store ids as 32-bit integers; ids are never negative.
- ``MAX_TOKENS_PER_INPUT`` (65,536): one embeddings input; models take 512-32k tokens.
- ``MAX_MESSAGES`` (2,048), ``MAX_TOOLS`` (128, OpenAI's own limit), ``MAX_STOP`` (16 stop
  sequences; OpenAI allows 4, vLLM more): lists a chat request can meaningfully hold.
- ``MAX_ITEMS`` (4,096): any other list or object passed through to a worker.
- ``MAX_NODES`` (100,000): all list and object entries of one body, so the walk below stays
  well under 100 ms on the worst body that passes (a few µs on an ordinary one).

NaN and infinities are refused everywhere: JSON cannot carry them (the decoder refuses), and
multipart form fields are parsed with ``finite_number``.
"""

from __future__ import annotations

import math
from typing import Any

from app.errors import InvalidRequest

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_TOKENS = 2**24
MAX_DIMENSIONS = 65_536
MAX_TOKEN_ID = 2**31 - 1
MAX_TOKENS_PER_INPUT = 65_536
MAX_MESSAGES = 2_048
MAX_TOOLS = 128
MAX_STOP = 16
MAX_ITEMS = 4_096
MAX_NODES = 100_000


def _path(parent: str, key: str | int) -> str:
    return f"{parent}.{key}" if parent else str(key)


def check_values(body: dict[str, Any], *, skip: frozenset[str] = frozenset()) -> None:
    """Refuse (400 naming the field) integers outside int64, non-finite floats, lists or objects
    of more than ``MAX_ITEMS`` entries and bodies of more than ``MAX_NODES`` values.

    ``skip`` names top-level fields the request's schema already bounds tighter (and whose size
    would make this walk slow, like embeddings' token arrays). Iterative: depth costs no stack.
    """
    # (parent path, key, value): a path is only formatted for containers and errors.
    pending: list[tuple[str, Any, Any]] = [("", key, value) for key, value in body.items() if key not in skip]
    if len(pending) > MAX_ITEMS:
        raise InvalidRequest(f"The body has more than {MAX_ITEMS} fields", code="too_many_items")
    budget = MAX_NODES
    while pending:
        parent, key, value = pending.pop()
        kind = type(value)  # JSON decodes to exactly these types: no subclass to consider
        if kind is str or kind is bool or value is None:
            continue
        if kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                _refuse(parent, key, "is outside the 64-bit integer range")
        elif kind is float:
            if not math.isfinite(value):
                _refuse(parent, key, "must be a finite number")
        elif kind is list or kind is dict:
            budget -= len(value)
            if len(value) > MAX_ITEMS or budget < 0:
                what = f"may hold at most {MAX_ITEMS} items" if len(value) > MAX_ITEMS else "is too large"
                _refuse(parent, key, what, code="too_many_items")
            path = _path(parent, key)
            items = value.items() if kind is dict else enumerate(value)
            pending.extend((path, index, item) for index, item in items)


def _refuse(parent: str, key: str | int, problem: str, *, code: str = "invalid_value") -> None:
    path = _path(parent, key)
    raise InvalidRequest(f"{path} {problem}", param=path, code=code)


def finite_number(value: str, param: str) -> float:
    """A multipart text field as a float: 'nan', 'inf' and non-numbers are a 400 naming ``param``."""
    try:
        number = float(value)
    except ValueError:
        raise InvalidRequest(f"{param} must be a number", param=param) from None
    if not math.isfinite(number):
        raise InvalidRequest(f"{param} must be a finite number", param=param)
    return number


__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_DIMENSIONS",
    "MAX_ITEMS",
    "MAX_MESSAGES",
    "MAX_NODES",
    "MAX_STOP",
    "MAX_TOKENS",
    "MAX_TOKENS_PER_INPUT",
    "MAX_TOKEN_ID",
    "MAX_TOOLS",
    "check_values",
    "finite_number",
]
