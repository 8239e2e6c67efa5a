"""handlers/common/media.py against a real HTTP server on 127.0.0.1 (no network needed).

The server is ``http.server`` in a thread rather than an ASGI app, because several cases need
framing an ASGI server would refuse to produce: a Content-Length that lies, a body delimited
by closing the connection, a stall after the headers.
"""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from handlers.common.errors import HandlerError, InvalidInput, decode_error
from handlers.common.media import MAX_BYTES, MB, FetchSettings, decode_base64_media, fetch_media, max_bytes
from tests.support.servers import free_port


def _wav(seconds: float = 0.1, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(bytes((128 + (i * 7) % 50) for i in range(int(seconds * rate))))
    return buffer.getvalue()


WAV = _wav()
FAST = FetchSettings(connect_timeout_s=2, read_timeout_s=2, total_timeout_s=10, max_redirects=3)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: list[str] = []  # shared on purpose: the tests read what arrived
    hosts: list[str] = []

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        return

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _endless(self, headers: dict[str, str], chunked: bool, pause: float = 0.0, piece: bytes = WAV) -> None:
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        try:
            for _ in range(2000):  # at most ~16 MB: far past every limit the tests set
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                self.wfile.flush()
                if pause:
                    time.sleep(pause)
        except OSError:
            return  # the client hung up, as it should
        finally:
            self.close_connection = True

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        type(self).hits.append(parts.path)
        type(self).hosts.append(self.headers.get("Host", ""))
        path, query = parts.path, parse_qs(parts.query)
        if path in ("/audio.wav", "/blob"):
            self._send(200, WAV, "audio/wav" if path == "/audio.wav" else "application/octet-stream")
        elif path == "/declared.mp3":
            self._send(200, b"\x00\x01unrecognised-bytes" * 4, "audio/mpeg")
        elif path == "/page":
            self._send(200, b"<!DOCTYPE html><html><body>Not found</body></html>", "text/html; charset=utf-8")
        elif path == "/redirect":
            self._send(302, b"", "text/plain", {"Location": query["to"][0]})
        elif path == "/loop":
            self._send(302, b"", "text/plain", {"Location": "/loop"})
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"nope", "text/plain")
        elif path == "/big-declared":
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
            time.sleep(1.5)  # says "a gigabyte" and sends nothing: the client must not wait
        elif path == "/big-chunked":
            self._endless({"Transfer-Encoding": "chunked", "Content-Type": "audio/wav"}, chunked=True)
        elif path == "/lying-length":
            # Claims 100 bytes, but chunked framing wins (RFC 9112 6.3): the body is endless.
            self._endless({"Content-Length": "100", "Transfer-Encoding": "chunked"}, chunked=True)
        elif path == "/until-close":
            self._endless({"Connection": "close", "Content-Type": "audio/wav"}, chunked=False)
        elif path == "/short-length":
            self._endless({"Content-Length": "1000", "Content-Type": "audio/wav"}, chunked=False)
        elif path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(WAV[:100])
            self.wfile.flush()
            time.sleep(2)
        elif path == "/drip":
            self._endless({"Transfer-Encoding": "chunked"}, chunked=True, pause=0.05, piece=b"x")


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def allowlisted(origin: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MEDIA_FETCH_ALLOWLIST", origin.removeprefix("http://"))
    return origin


def _invalid(url: str, code: str, *, kind: str = "audio", **kwargs: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        fetch_media(url, kind, "audio", settings=FAST, **kwargs)  # type: ignore[arg-type]
    error = caught.value
    assert (error.param, error.code, error.type) == ("audio", code, "invalid_request_error"), error.message
    return error


def _server_error(url: str, code: str, settings: FetchSettings = FAST) -> HandlerError:
    with pytest.raises(HandlerError) as caught:
        fetch_media(url, "audio", "audio", settings=settings)
    error = caught.value
    assert not isinstance(error, InvalidInput)
    assert (error.type, error.code, error.param) == ("server_error", code, "audio"), error.message
    return error


# --- fetching that works -------------------------------------------------------------------


def test_fetches_an_allowlisted_url_into_memory(origin: str) -> None:
    media = fetch_media(f"{origin}/audio.wav", "audio", "audio", settings=FAST)
    assert (media.data, media.format, media.content_type) == (WAV, "wav", "audio/wav")


def test_magic_bytes_decide_over_a_generic_content_type(origin: str) -> None:
    assert fetch_media(f"{origin}/blob", "audio", "audio", settings=FAST).format == "wav"


def test_a_declared_audio_type_vouches_for_unrecognised_bytes(origin: str) -> None:
    assert fetch_media(f"{origin}/declared.mp3", "audio", "audio", settings=FAST).format == "mp3"


def test_relative_redirect_to_an_allowed_host_is_followed(origin: str) -> None:
    media = fetch_media(f"{origin}/redirect?to=/audio.wav", "audio", "audio", settings=FAST)
    assert media.data == WAV


def test_allowlist_accepts_a_bare_host_or_a_url(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for entry in ("127.0.0.1", f"{origin}/", f" other.example , {origin.removeprefix('http://')}"):
        monkeypatch.setenv("MEDIA_FETCH_ALLOWLIST", entry)
        assert fetch_media(f"{origin}/audio.wav", "audio", "audio", settings=FAST).data == WAV


def test_the_checked_address_is_the_one_connected_to(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name is resolved once, by the check; httpx gets the checked IP.

    Only the system resolver is faked: media.example.test resolves to a public address,
    and connections to that address are routed to the local test server.
    """
    port = int(origin.rsplit(":", 1)[1])
    real = socket.getaddrinfo
    lookups: list[str] = []

    def resolver(host: str, *args: object, **kwargs: object) -> object:
        lookups.append(host)
        if host == "media.example.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]
        return real("127.0.0.1" if host == "93.184.215.14" else host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.delenv("MEDIA_FETCH_ALLOWLIST")
    media = fetch_media(f"http://media.example.test:{port}/audio.wav", "audio", "audio", settings=FAST)
    assert media.data == WAV
    assert lookups == ["media.example.test", "93.184.215.14"]  # the name once, then the checked IP
    assert _Handler.hosts[-1] == f"media.example.test:{port}"  # virtual hosting still sees the name


# --- refusals before any connection ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/a.wav",
        "http://172.16.5.4/a.wav",
        "http://192.168.1.20/a.wav",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://metadata.google.internal.invalid/",  # does not resolve: refused as well
        "http://0.0.0.0/a.wav",
        "http://100.64.0.1/a.wav",  # carrier-grade NAT
        "http://[::1]/a.wav",
        "http://[::ffff:127.0.0.1]/a.wav",  # IPv4-mapped loopback
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 form of the metadata address
        "http://[2002:7f00:1::]/",  # 6to4 form of 127.0.0.1
        "http://127.1/a.wav",
        "http://2130706433/a.wav",  # 127.0.0.1 as one decimal number
        "https://127.0.0.1/a.wav",
    ],
)
def test_private_loopback_and_metadata_addresses_are_refused(url: str) -> None:
    before = len(_Handler.hits)
    error = _invalid(url, "invalid_url" if ".invalid" in url else "url_not_allowed")
    assert "audio" in error.message
    assert len(_Handler.hits) == before


def test_the_allowlist_is_exact_about_ports(origin: str) -> None:
    other = f"http://127.0.0.1:{free_port()}/audio.wav"
    _invalid(other, "url_not_allowed")


def test_a_name_that_resolves_to_loopback_is_refused(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    port = origin.rsplit(":", 1)[1]
    _invalid(f"http://localhost:{port}/audio.wav", "url_not_allowed")
    monkeypatch.setenv("MEDIA_FETCH_ALLOWLIST", f"localhost:{port}")
    assert fetch_media(f"http://localhost:{port}/audio.wav", "audio", "audio", settings=FAST).data == WAV


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.mp3",
        "gopher://example.com/",
        "data:audio/wav;base64,UklGRg==",
        "//example.com/a.wav",
        "not a url",
        "http:///a.wav",
        "",
        42,
        None,
    ],
)
def test_only_http_urls_are_accepted(url: object) -> None:
    _invalid(url, "invalid_url")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/iam/", "http://10.1.2.3/x.wav", "http://[::1]/x", "file:///etc/passwd"],
)
def test_redirects_are_checked_at_every_hop(origin: str, target: str) -> None:
    code = "invalid_url" if target.startswith("file") else "url_not_allowed"
    _invalid(f"{origin}/redirect?to={target}", code)


def test_redirect_to_another_port_of_an_allowlisted_host_is_refused(origin: str) -> None:
    _invalid(f"{origin}/redirect?to=http://127.0.0.1:{free_port()}/audio.wav", "url_not_allowed")


def test_redirect_loops_stop(origin: str) -> None:
    _invalid(f"{origin}/loop", "too_many_redirects")


# --- size limits -------------------------------------------------------------------------------


def test_default_limits_follow_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (MAX_BYTES["audio"], MAX_BYTES["video"], MAX_BYTES["image"]) == (80 * MB, 80 * MB, 10 * MB)
    assert max_bytes("audio") == 80 * MB
    monkeypatch.setenv("MEDIA_MAX_IMAGE_MB", "1.5")
    assert max_bytes("image") == int(1.5 * MB)


def test_an_honest_large_content_length_is_refused_before_the_body(origin: str) -> None:
    started = time.monotonic()
    error = _invalid(f"{origin}/big-declared", "media_too_large", limit=1000)
    assert time.monotonic() - started < 1.0  # did not wait for the (never coming) body
    assert "limit" in error.message


@pytest.mark.parametrize("path", ["/big-chunked", "/lying-length", "/until-close"])
def test_oversized_bodies_are_cut_while_streaming(origin: str, path: str) -> None:
    _invalid(f"{origin}{path}", "media_too_large", limit=64 * 1024)


def test_the_env_limit_applies(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_MAX_AUDIO_MB", "0.05")
    error = _invalid(f"{origin}/big-chunked", "media_too_large")
    assert "0.05 MB" in error.message


def test_a_short_content_length_never_yields_more_than_it_declares(origin: str) -> None:
    assert len(fetch_media(f"{origin}/short-length", "audio", "audio", settings=FAST).data) == 1000


# --- formats -------------------------------------------------------------------------------------


def test_an_html_page_is_not_audio(origin: str) -> None:
    assert "html" in _invalid(f"{origin}/page", "unsupported_format").message


def test_audio_is_not_an_image(origin: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        fetch_media(f"{origin}/audio.wav", "image", "image_url", settings=FAST)
    assert (caught.value.param, caught.value.code) == ("image_url", "unsupported_format")


# --- upstream failures ------------------------------------------------------------------------------


def test_a_stalled_body_times_out(origin: str) -> None:
    started = time.monotonic()
    _server_error(f"{origin}/stall", "media_fetch_timeout", FetchSettings(read_timeout_s=0.3))
    assert time.monotonic() - started < 1.5


def test_a_dripping_body_hits_the_total_timeout(origin: str) -> None:
    started = time.monotonic()
    _server_error(f"{origin}/drip", "media_fetch_timeout", FetchSettings(read_timeout_s=1, total_timeout_s=0.4))
    assert time.monotonic() - started < 1.5


def test_connection_refused_is_a_server_error(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("MEDIA_FETCH_ALLOWLIST", f"127.0.0.1:{port}")
    _server_error(f"http://127.0.0.1:{port}/a.wav", "media_fetch_failed")


def test_client_errors_are_the_clients_and_server_errors_are_not(origin: str) -> None:
    assert "404" in _invalid(f"{origin}/status/404", "media_fetch_failed").message
    assert "503" in _server_error(f"{origin}/status/503", "media_fetch_failed").message


def test_errors_render_as_the_handler_error_shape(origin: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        fetch_media("http://169.254.169.254/", "audio", "audio", settings=FAST)
    error = decode_error(caught.value.to_output())
    assert error is not None
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "audio", "url_not_allowed")


# --- base64 ---------------------------------------------------------------------------------------


def test_base64_raw_data_uri_urlsafe_and_wrapped_lines_decode() -> None:
    encoded = base64.b64encode(WAV).decode()
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    for value in (
        encoded,
        f"data:audio/wav;base64,{encoded}",
        base64.urlsafe_b64encode(WAV).decode(),
        wrapped,
        encoded.rstrip("="),
    ):
        media = decode_base64_media(value, "audio", "audio_base64")
        assert (media.data, media.format) == (WAV, "wav")
    assert decode_base64_media(f"data:audio/wav;base64,{encoded}", "audio", "a").content_type == "audio/wav"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "invalid_base64"),
        (None, "invalid_base64"),
        ("not base64!!", "invalid_base64"),
        ("data:audio/wav,UklGRg==", "invalid_base64"),  # a data URI that is not base64
        ("data:text/html;base64," + base64.b64encode(b"\x00\x01 hello").decode(), "unsupported_format"),
        (base64.b64encode(b"<html><body>hi</body></html>").decode(), "unsupported_format"),
    ],
)
def test_bad_base64_names_the_field(value: object, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_base64_media(value, "audio", "audio_base64")
    assert (caught.value.param, caught.value.code) == ("audio_base64", code)


def test_base64_size_is_limited_before_and_after_decoding() -> None:
    encoded = base64.b64encode(WAV).decode()
    for limit in (100, len(WAV) - 1):  # far over: refused undecoded; just over: refused after
        with pytest.raises(InvalidInput) as caught:
            decode_base64_media(encoded, "audio", "audio_base64", limit=limit)
        assert caught.value.code == "media_too_large"
    assert decode_base64_media(encoded, "audio", "audio_base64", limit=len(WAV)).data == WAV
