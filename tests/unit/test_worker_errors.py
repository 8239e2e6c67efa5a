"""Every form of worker failure maps to the right client error."""

from __future__ import annotations

import json

from app.errors import InvalidRequest, Unavailable, UpstreamError
from app.upstream.worker_errors import error_from_status, output_error, worker_error


def test_our_handler_shape() -> None:
    err = worker_error({"error": {"type": "invalid_request_error", "code": "x", "message": "bad", "param": "n"}})
    assert isinstance(err, InvalidRequest) and err.param == "n" and err.message == "bad"
    server = worker_error({"type": "server_error", "message": "oom", "code": "cuda"})
    assert isinstance(server, UpstreamError) and server.status_code == 502


def test_runpod_sdk_exception_string() -> None:
    raw = json.dumps({"error_type": "<class 'ValueError'>", "error_message": "boom", "error_traceback": "..."})
    err = worker_error(raw)
    assert err.message == "ValueError: boom"


def test_plain_string_list_and_infinity_output() -> None:
    assert worker_error("disk full").message == "disk full"
    assert worker_error(["a", "b"]).message == "a; b"
    infinity = output_error([{"object": "error", "message": "too long", "type": "BadRequest", "code": 400}])
    assert isinstance(infinity, InvalidRequest)
    assert output_error({"data": []}) is None


def test_http_statuses() -> None:
    throttled = error_from_status(429, b"", "9")
    assert isinstance(throttled, Unavailable) and throttled.headers["Retry-After"] == "9"
    assert "RUNPOD_API_KEY" in error_from_status(401, b"").message
    assert error_from_status(500, b"oops").status_code == 502


def test_a_generator_traceback_in_an_error_object_is_cut() -> None:
    # RunPod's OpenAI stream relays a generator handler's exception as an error event's message.
    from app.upstream.worker_errors import worker_error as _worker_error

    error = _worker_error({"error": {"message": "handler: CUDA error \ntraceback: Traceback (most recent call last):",
                                     "type": "server_error"}})
    assert error.message == "CUDA error"
