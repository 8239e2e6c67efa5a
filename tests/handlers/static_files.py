"""A loopback HTTP server that serves fixed bytes per path, for workers that fetch media by URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def static_server(files: Mapping[str, tuple[bytes, str]]) -> Iterator[str]:
    """Serve ``{path: (body, content_type)}`` on a free port; yields ``http://127.0.0.1:<port>``.

    GET and HEAD, byte ranges (``Range: bytes=a-b``) as downloaders use them, 404 elsewhere.
    A content type of ``redirect`` answers 302 with the body as ``Location``.
    """

    class Handler(BaseHTTPRequestHandler):
        def _respond(self, with_body: bool) -> None:
            entry = files.get(self.path.split("?")[0])
            if entry is None:
                self.send_error(404)
                return
            body, content_type = entry
            if content_type == "redirect":
                self.send_response(302)
                self.send_header("Location", body.decode())
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start, end = 0, len(body) - 1
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes="):
                first, _, last = ranged[6:].partition("-")
                start = int(first or 0)
                end = min(int(last), end) if last else end
            part = body[start : end + 1]
            self.send_response(206 if ranged else 200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(part)))
            self.send_header("Accept-Ranges", "bytes")
            if ranged:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
            self.end_headers()
            if with_body:
                self.wfile.write(part)

        def do_GET(self) -> None:
            self._respond(True)

        def do_HEAD(self) -> None:
            self._respond(False)

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
