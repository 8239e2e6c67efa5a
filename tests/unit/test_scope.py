"""app/scope.py: headers and query parameters read straight from an ASGI scope."""

from __future__ import annotations

from typing import Any

from app.scope import scope_header, scope_query_param


def _scope(headers: list[tuple[bytes, bytes]] | None = None, query: bytes | None = None) -> Any:
    scope: dict[str, Any] = {"type": "websocket"}
    if headers is not None:
        scope["headers"] = headers
    if query is not None:
        scope["query_string"] = query
    return scope


def test_the_first_value_of_a_header() -> None:
    scope = _scope([(b"authorization", b"Bearer a"), (b"x-other", b"1"), (b"authorization", b"Bearer b")])
    assert scope_header(scope, b"authorization") == "Bearer a"
    assert scope_header(scope, b"x-missing") is None
    assert scope_header(_scope(), b"authorization") is None  # no headers at all


def test_header_bytes_are_latin_1() -> None:
    assert scope_header(_scope([(b"x-name", "café".encode("latin-1"))]), b"x-name") == "café"


def test_query_parameters_first_value_blank_and_decoded() -> None:
    scope = _scope(query=b"token=a%2Bb%20c&token=second&empty=&flag&plus=a+b")
    assert scope_query_param(scope, "token") == "a+b c"
    assert scope_query_param(scope, "empty") == ""
    assert scope_query_param(scope, "flag") == ""
    assert scope_query_param(scope, "plus") == "a b"
    assert scope_query_param(scope, "absent") is None
    assert scope_query_param(_scope(query=b""), "token") is None
    assert scope_query_param(_scope(), "token") is None
