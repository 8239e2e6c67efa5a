"""Garbage-collector policy for a served gateway process (not for tests or library use).

A worker holding thousands of WebSockets holds over a million GC-tracked objects (~130 per
socket: coroutines, header lists, closures). CPython 3.11 scans all of them in a full
collection, which took ~1 s at 10,000 sockets on a 2-core VM, and with the default
thresholds (700, 10, 10) every frame a watcher waits for is promoted to the old generation
within a second, so full collections came every few seconds under fan-out
(bench/websocket_bench.py). Larger young generations let such short waits die young, and the
objects built at startup (imports, the app) are frozen out of every collection for good.
"""

from __future__ import annotations

import gc

# Young collection every 50,000 net allocations, middle every 20 of those: a watcher's wait for
# its next frame (seconds) ends before it is promoted. Full ones stay at CPython's default rule.
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
