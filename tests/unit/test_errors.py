"""Error bodies and the unhandled-error log line."""

from __future__ import annotations

import msgspec

from app.errors import ModelNotFound, describe_unhandled, echo, stack_of


def _parse(payload: str) -> int:
    return int(payload)  # raises ValueError with the payload in its message


def _handler(payload: str) -> int:
    return _parse(payload)


def _raised(payload: str) -> BaseException:
    try:
        _handler(payload)
    except ValueError as exc:
        return exc
    raise AssertionError("no error")


def test_the_log_line_has_type_message_and_frames_with_line_numbers() -> None:
    exc = _raised("not-a-number")
    scope = {
        "path": "/v1/webhooks/runpod/nonce-secret",
        "path_template": "/v1/webhooks/runpod/{nonce}",
        "method": "POST",
    }
    fields = describe_unhandled(exc, scope)
    assert fields["error_type"] == "ValueError"
    assert "invalid literal" in fields["error_message"]
    stack = fields["stack"]
    assert stack[-2].startswith("tests/unit/test_errors.py:") and stack[-2].endswith(" in _handler")
    assert stack[-1].endswith(" in _parse") and stack[-1].split(":")[1].split(" ")[0].isdigit()
    assert fields["route"] == "/v1/webhooks/runpod/{nonce}"
    assert "nonce-secret" not in msgspec.json.encode(fields).decode()


def test_a_long_message_is_cut_in_the_log() -> None:
    exc = _raised("x" * 100_000)
    assert len(describe_unhandled(exc, {})["error_message"]) < 400
    assert describe_unhandled(exc, {})["route"] == "<unmatched>"


def test_stack_frames_never_carry_argument_values() -> None:
    text = " ".join(stack_of(_raised("argument-marker")))
    assert "argument-marker" not in text


def test_echoed_input_is_truncated() -> None:
    assert echo("m" * 10) == "m" * 10
    assert echo("m" * 10_000_000).endswith("... (10000000 chars)") and len(echo("m" * 10_000_000)) < 100
    body = ModelNotFound("x" * 1_000_000, param="p" * 1_000_000).body()
    assert len(msgspec.json.encode(body)) < 3000
