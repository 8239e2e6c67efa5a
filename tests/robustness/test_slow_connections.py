"""Slow, oversized and malformed connections against a real ``serve``: each is answered or closed
within a bounded time, in the API's JSON error shape where a response can still be given."""

from __future__ import annotations

import time

import msgspec
import pytest

from tests.robustness.conftest import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, GatewayProcess
from tests.robustness.rawsocket import connect, read_until_closed, status_and_error

pytestmark = pytest.mark.slow

# Time the server gets beyond its configured timeout before the test calls it held.
SLACK_S = 3.0


def _trickle(sock: object, data: bytes, seconds: float) -> None:
    for byte in data[: int(seconds)]:
        try:
            sock.sendall(bytes([byte]))  # type: ignore[attr-defined]
        except OSError:
            return
        time.sleep(1)


def test_headers_sent_a_byte_a_second_time_out(served: GatewayProcess) -> None:
    sock = connect(served.url)
    with sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        _trickle(sock, b"X-Slow: 1234567890", HEADER_TIMEOUT_S + 1)
        raw, _elapsed, closed = read_until_closed(sock, HEADER_TIMEOUT_S + SLACK_S)
    assert closed, "the server kept a trickling head open"
    status, error = status_and_error(raw)
    assert (status, error["code"]) == (408, "request_timeout")


def test_idle_connection_is_closed(served: GatewayProcess) -> None:
    with connect(served.url) as sock:
        _raw, elapsed, closed = read_until_closed(sock, HEADER_TIMEOUT_S + SLACK_S)
    assert closed and elapsed < HEADER_TIMEOUT_S + SLACK_S


def test_body_sent_a_byte_a_second_times_out(served: GatewayProcess) -> None:
    with connect(served.url) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        _trickle(sock, b'"model": "tiny-chat"', BODY_TIMEOUT_S + 2)
        raw, _elapsed, closed = read_until_closed(sock, BODY_TIMEOUT_S + SLACK_S)
    assert closed, "the server kept a trickling body open"
    if raw:  # the app may have answered first (no key); otherwise the server's 408
        status, _error = status_and_error(raw)
        assert status in (401, 408)


def test_body_shorter_than_content_length_is_answered(served: GatewayProcess) -> None:
    with connect(served.url) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /v1/runpod/ep/run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer edge-admin-key\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"input": {}}'
        )
        raw, _elapsed, closed = read_until_closed(sock, BODY_TIMEOUT_S + SLACK_S)
    assert closed and time.monotonic() - started < BODY_TIMEOUT_S + SLACK_S
    status, error = status_and_error(raw)
    assert (status, error["code"]) == (408, "request_timeout")
    # The app saw the client go mid-body: its access line counts a client error, not a 500.
    time.sleep(0.5)
    lines = [msgspec.json.decode(line) for line in served.out.read_text().splitlines() if line.startswith("{")]
    proxied = [line["status"] for line in lines if line.get("route") == "/v1/runpod/{endpoint_id}/run"]
    assert proxied == [400], proxied


@pytest.mark.parametrize("where", ["request_line", "header"])
def test_websocket_upgrade_with_huge_head_is_refused(served: GatewayProcess, where: str) -> None:
    path = "/v1/jobs/chat/job_x/ws" + ("?pad=" + "a" * 9000 if where == "request_line" else "")
    extra = f"X-Pad: {'b' * 9000}\r\n" if where == "header" else ""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    with connect(served.url) as sock:
        sock.sendall(request.encode())
        raw, elapsed, closed = read_until_closed(sock, SLACK_S)
    assert closed and elapsed < SLACK_S
    status, error = status_and_error(raw)
    assert status in (414, 431), error


def test_huge_header_is_refused_before_the_app(served: GatewayProcess) -> None:
    with connect(served.url) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
        try:
            for _ in range(64):  # 8 MiB offered; the server stops reading long before
                sock.sendall(b"k" * 128 * 1024)
        except OSError:
            pass
        raw, _elapsed, closed = read_until_closed(sock, SLACK_S)
    assert closed
    status, error = status_and_error(raw)
    assert (status, error["code"]) == (431, "headers_too_large")


@pytest.mark.parametrize(
    "head",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
    ],
    ids=["bad-request-line", "cl-and-te", "duplicate-cl"],
)
def test_requests_the_parser_refuses_get_a_json_error(served: GatewayProcess, head: bytes) -> None:
    with connect(served.url) as sock:
        sock.sendall(head)
        raw, _elapsed, closed = read_until_closed(sock, SLACK_S)
    assert closed
    status, error = status_and_error(raw)
    assert (status, error["code"], error["type"]) == (400, "invalid_http_request", "invalid_request_error")


def test_a_normal_request_still_works(served: GatewayProcess) -> None:
    with connect(served.url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw, _elapsed, _closed = read_until_closed(sock, SLACK_S)
    assert raw.startswith(b"HTTP/1.1 200")


def test_a_keep_alive_request_trickled_after_a_good_one_times_out(served: GatewayProcess) -> None:
    with connect(served.url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first or not first.rstrip().endswith(b"}"):
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        _trickle(sock, b"X-Slow: 1234567890", HEADER_TIMEOUT_S + 1)
        raw, _elapsed, closed = read_until_closed(sock, HEADER_TIMEOUT_S + SLACK_S)
    assert closed
    status, error = status_and_error(raw)
    assert (status, error["code"]) == (408, "request_timeout")
