"""Which RunPod answers are RunPod's failures (upstream_error) and which are the worker's."""

from __future__ import annotations

import pytest

from app.upstream.client import UpstreamResponse, api_failure, call_labels, passthrough_failure


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b'{"error": "internal"}'),
        (502, b'{"error": {"message": "looks like a worker error", "code": "oom"}}'),
        (503, b"upstream connect error"),
        (504, b""),
    ],
)
def test_queue_call_5xx_is_retryable_upstream_error(status: int, body: bytes) -> None:
    err = api_failure(UpstreamResponse(status, body))
    assert (err.status_code, err.code, err.retryable) == (502, "upstream_error", True)
    assert "x-should-retry" not in err.response_headers()
    assert err.message.startswith(f"RunPod answered HTTP {status}")


def test_runpods_words_are_kept_short() -> None:
    err = api_failure(UpstreamResponse(502, b'{"error": "' + b"x" * 5000 + b'"}'))
    assert len(err.message) < 400


@pytest.mark.parametrize(("status", "code"), [(401, "upstream_auth"), (404, "upstream_not_found")])
def test_queue_call_4xx_keeps_its_meaning(status: int, code: str) -> None:
    assert api_failure(UpstreamResponse(status, b"{}")).code == code


def test_passthrough_worker_error_object_stays_the_workers() -> None:
    err = passthrough_failure(500, b'{"error": {"message": "CUDA out of memory", "code": "oom"}}', None)
    assert err.code == "oom"
    assert not err.retryable


@pytest.mark.parametrize("body", [b'{"error": "no workers available"}', b"Bad Gateway", b""])
def test_passthrough_5xx_in_runpods_shape_is_upstream_error(body: bytes) -> None:
    err = passthrough_failure(502, body, None)
    assert err.code == "upstream_error"
    assert not err.retryable  # the worker may already have run it


def test_call_labels() -> None:
    assert call_labels("https://api.runpod.ai/v2/ep1/status/abc") == ("ep1", "status")
    assert call_labels("https://cdn.example.com/a.png") == ("-", "fetch")
