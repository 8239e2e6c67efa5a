"""Incremental Server-Sent Events parsing across arbitrary chunk boundaries.

worker-vllm yields raw byte pieces, so an event, a line or even a UTF-8 character may be
split between chunks. ``feed`` returns the ``data`` of every event completed so far.
"""

from __future__ import annotations

import codecs

# The last frame of an OpenAI chat stream, as the gateway relays it.
DONE = b"data: [DONE]\n\n"


class SSEParser:
    """Linear in the bytes fed, however they are cut: an unfinished line waits as a list of
    pieces (joined once its end arrives), and line ends are found with ``str.find``."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial: list[str] = []  # pieces of a line whose end has not arrived
        self._data: list[str] = []
        self._pending_cr = False

    def feed(self, chunk: bytes | str) -> list[str]:
        text = self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        if self._pending_cr:
            # A CR ended the previous chunk; a leading LF completes that CRLF.
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
        has_cr = "\r" in text
        if not has_cr and "\n" not in text:
            if text:
                self._partial.append(text)
            return []
        if self._partial:
            self._partial.append(text)
            text = "".join(self._partial)
            self._partial = []
        events: list[str] = []
        start, size, end = 0, len(text), -1
        while start < size:
            if end < start:  # found once per LF, not once per line (CR-only streams)
                end = text.find("\n", start)
                if end < 0:
                    end = size + 1 if has_cr else -1
            if has_cr:
                cr = text.find("\r", start, min(end, size))
                if cr >= 0:
                    if cr + 1 == size:
                        self._pending_cr = True
                        self._line(text[start:cr], events)
                        return events
                    self._line(text[start:cr], events)
                    start = cr + (2 if text[cr + 1] == "\n" else 1)
                    continue
            if end < 0 or end > size:
                self._partial.append(text[start:])
                break
            self._line(text[start:end], events)
            start = end + 1
        return events

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
        events = self.feed("\n\n") if self._partial or self._data else []
        return events
