"""Incremental Server-Sent Events parsing across arbitrary chunk boundaries.

worker-vllm yields raw byte pieces, so an event, a line or even a UTF-8 character may be
split between chunks. ``feed`` returns the ``data`` of every event completed so far.
"""

from __future__ import annotations

import codecs


class SSEParser:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._data: list[str] = []
        self._pending_cr = False

    def feed(self, chunk: bytes | str) -> list[str]:
        text = self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        if self._pending_cr:
            # A CR ended the previous chunk; a leading LF completes that CRLF.
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
        self._buffer += text
        events: list[str] = []
        while True:
            cut = self._next_line_end()
            if cut is None:
                break
            end, width = cut
            line = self._buffer[:end]
            self._buffer = self._buffer[end + width :]
            self._line(line, events)
        return events

    def _next_line_end(self) -> tuple[int, int] | None:
        buf = self._buffer
        for index, char in enumerate(buf):
            if char == "\n":
                return index, 1
            if char == "\r":
                if index + 1 < len(buf):
                    return index, 2 if buf[index + 1] == "\n" else 1
                self._pending_cr = True
                return index, 1
        return None

    def _line(self, line: str, events: list[str]) -> None:
        if line == "":
            if self._data:
                events.append("\n".join(self._data))
                self._data = []
            return
        if line.startswith(":"):
            return
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)

    def close(self) -> list[str]:
        """Events left when the stream ends without a final blank line."""
        events = self.feed("\n\n") if self._buffer or self._data else []
        return events
