"""A finished job attempt, and how the values a handler produced are recorded.

Values are snapshotted as JSON (``msgspec.Raw``) the moment they leave the handler, so a
handler that keeps mutating an object cannot change what was reported, and a value that
cannot be serialised fails the job the way it fails a real worker.
"""

from __future__ import annotations

import json
import os
import socket
import traceback
from collections.abc import Sequence
from typing import Any

import msgspec

# A stream chunk: text stays text (relayed verbatim as SSE bytes), anything else is JSON.
Chunk = str | msgspec.Raw

_encode = msgspec.json.encode


class Outcome(msgspec.Struct, frozen=True):
    """A finished attempt: ``error`` set means FAILED; ``output`` None means no output key."""

    output: msgspec.Raw | None = None
    error: msgspec.Raw | None = None


def snapshot(value: Any) -> msgspec.Raw:
    """``value`` as JSON; raises TypeError/EncodeError for values JSON cannot hold."""
    return msgspec.Raw(_encode(value))


def exception_error(exc: BaseException, worker_id: str) -> msgspec.Raw:
    """The runpod SDK's report of a raised exception: a JSON-encoded *string*."""
    info = {
        "error_type": str(type(exc)),
        "error_message": str(exc),
        "error_traceback": "".join(traceback.format_exception(exc)),
        "hostname": os.environ.get("RUNPOD_POD_HOSTNAME") or socket.gethostname(),
        "worker_id": worker_id,
        "runpod_version": "emulator",
    }
    return snapshot(json.dumps(info))


def chunk(item: Any) -> Chunk:
    """A yielded value as a stream chunk."""
    if isinstance(item, str):
        return item
    if isinstance(item, bytes | bytearray):
        return bytes(item).decode("utf-8", "replace")
    return snapshot(item)


def aggregate(chunks: Sequence[Chunk]) -> msgspec.Raw:
    """``return_aggregate_stream``: the final output is the list of every yield."""
    parts = [_encode(c) if isinstance(c, str) else bytes(c) for c in chunks]
    return msgspec.Raw(b"[" + b",".join(parts) + b"]")
