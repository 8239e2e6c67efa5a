"""The incremental SSE parser at every possible chunk boundary."""

from __future__ import annotations

from app.upstream.sse import SSEParser

STREAM = 'data: {"a": "é1"}\n\n: comment\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n'


def _parse(pieces: list[bytes]) -> list[str]:
    parser = SSEParser()
    events: list[str] = []
    for piece in pieces:
        events += parser.feed(piece)
    return events + parser.close()


def test_whole_stream() -> None:
    assert _parse([STREAM.encode()]) == ['{"a": "é1"}', "line1\nline2", "[DONE]"]


def test_every_split_point_including_inside_utf8() -> None:
    raw = STREAM.encode()
    for cut in range(1, len(raw)):
        assert _parse([raw[:cut], raw[cut:]]) == ['{"a": "é1"}', "line1\nline2", "[DONE]"], cut


def test_byte_by_byte_with_crlf_and_cr() -> None:
    for newline in ("\r\n", "\r"):
        raw = STREAM.replace("\n", newline).encode()
        assert _parse([raw[i : i + 1] for i in range(len(raw))]) == ['{"a": "é1"}', "line1\nline2", "[DONE]"]


def test_unterminated_final_event_is_flushed_on_close() -> None:
    assert _parse([b"data: last"]) == ["last"]


def test_only_data_fields_count_and_one_leading_space_is_stripped() -> None:
    stream = "event: delta\nid: 7\nretry: 10\ndata:tight\ndata:  two spaces\nunknown\n\n"
    assert _parse([stream.encode()]) == ["tight\n two spaces"]


def test_an_event_with_no_data_is_not_an_event() -> None:
    assert _parse([b"event: ping\n\n: keep-alive\n\n\n\n"]) == []


def test_an_empty_data_line_is_an_empty_event() -> None:
    assert _parse([b"data:\n\n", b"data\n\n"]) == ["", ""]


def test_text_chunks_and_several_events_per_chunk() -> None:
    parser = SSEParser()
    assert parser.feed("data: a\n\ndata: b\n\ndata: c") == ["a", "b"]
    assert parser.feed("\n\n") == ["c"]
    assert parser.close() == []


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert _parse([b"data: \xff\xfe ok\n\n"]) == ["\ufffd\ufffd ok"]


def test_a_lone_cr_at_a_chunk_end_is_one_line_end_not_two() -> None:
    # "\r" then "\n" in the next chunk is one CRLF: the blank line after it still ends the event.
    assert _parse([b"data: a\r", b"\ndata: b\r", b"\n\r\n"]) == ["a\nb"]


def test_a_long_stream_in_tiny_pieces_parses_in_linear_time() -> None:
    import time

    event = 'data: {"choices": [{"delta": {"content": "0123456789abcdef"}}]}\n\n'
    long_line = "data: " + "x" * 2_000_000 + "\n\n"  # one event far larger than its pieces
    for stream in (event * 20_000, long_line, event.replace("\n", "\r") * 20_000):
        parser = SSEParser()
        started = time.perf_counter()
        events = [e for start in range(0, len(stream), 7) for e in parser.feed(stream[start : start + 7])]
        assert len(events) == stream.count("data:")
        # Quadratic work on ~1.4 MB would take minutes; linear work takes well under a second here.
        assert time.perf_counter() - started < 5
