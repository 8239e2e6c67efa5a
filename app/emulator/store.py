"""Job records: their states, transitions, stream chunks and expiry.

Everything here runs on the event loop; worker threads reach it via ``call_soon_threadsafe``.
A transition carries the attempt it belongs to, so a cancelled, timed-out or retried
attempt that is still running (an abandoned thread) can no longer change the record.
"""

from __future__ import annotations

import asyncio
import enum
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable

import msgspec

from app.emulator.outcome import Chunk, Outcome


class JobStatus(enum.StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT})


class Job:
    """One job, from enqueue until its record expires."""

    __slots__ = (
        "_changed", "attempt", "chunks", "endpoint_id", "error", "execution_timeout_s", "expires_at",
        "finished_at", "id", "input", "output", "progress", "queued_at", "removed", "result_ttl_s",
        "retries", "started_at", "status", "stop", "stream_cursor", "task", "timer", "ttl_s", "webhook",
        "worker_id",
    )  # fmt: skip

    def __init__(
        self,
        endpoint_id: str,
        job_input: msgspec.Raw,
        *,
        webhook: str | None,
        execution_timeout_s: float | None,
        ttl_s: float,
        result_ttl_s: float,
    ) -> None:
        self.id = str(uuid.uuid4())
        self.endpoint_id = endpoint_id
        self.input = job_input  # raw JSON: each attempt decodes a fresh copy, the echo is exact
        self.webhook = webhook
        self.execution_timeout_s = execution_timeout_s
        self.ttl_s = ttl_s
        self.result_ttl_s = result_ttl_s
        self.status = JobStatus.IN_QUEUE
        self.attempt = 0
        self.retries = 0
        self.queued_at = time.monotonic()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.worker_id: str | None = None
        self.output: msgspec.Raw | None = None
        self.error: msgspec.Raw | None = None
        self.progress: msgspec.Raw | None = None
        self.chunks: list[Chunk] = []
        self.stream_cursor = 0  # chunks before this were already returned by /stream
        self.removed = False  # expired or deleted: the id now answers 404
        self.task: asyncio.Task[None] | None = None  # the running attempt
        self.stop: threading.Event | None = None  # tells a generator thread to stop iterating
        self.expires_at = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self._changed: asyncio.Event | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def delay_ms(self) -> int:
        """Time spent waiting in the queue."""
        end = self.started_at or self.finished_at or time.monotonic()
        return max(0, round((end - self.queued_at) * 1000))

    @property
    def execution_ms(self) -> int:
        if self.started_at is None:
            return 0
        return max(0, round(((self.finished_at or time.monotonic()) - self.started_at) * 1000))

    def changed(self) -> asyncio.Event:
        """An event set at this job's next change (new chunk, progress, state, removal)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def take_stream(self) -> list[Chunk]:
        """Chunks not yet returned by /stream; each is returned once."""
        fresh = self.chunks[self.stream_cursor :]
        self.stream_cursor = len(self.chunks)
        return fresh


class JobStore:
    """All jobs by id, with per-endpoint counters and TTL-based expiry."""

    def __init__(self, on_terminal: Callable[[Job], None], on_remove: Callable[[Job], None]) -> None:
        self._jobs: dict[str, Job] = {}
        self._on_terminal = on_terminal
        self._on_remove = on_remove
        self.counts: dict[str, Counter[str]] = {}  # endpoint -> completed / failed / retried

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, job: Job) -> None:
        self._jobs[job.id] = job
        self._expire_in(job, job.ttl_s)

    def get(self, endpoint_id: str, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None or job.endpoint_id != endpoint_id:
            return None
        if job.expires_at <= time.monotonic():  # the timer may not have fired yet
            self.remove(job)
            return None
        return job

    def remove(self, job: Job) -> None:
        """Forget ``job`` (its TTL passed): /status answers 404; a running attempt is stopped."""
        if self._jobs.get(job.id) is not job:
            return
        del self._jobs[job.id]
        if job.timer is not None:
            job.timer.cancel()
            job.timer = None
        job.removed = True
        self._on_remove(job)
        job.notify()

    def close(self) -> None:
        for job in self._jobs.values():
            if job.timer is not None:
                job.timer.cancel()
                job.timer = None

    # transitions --------------------------------------------------------------------------

    def current(self, job: Job, attempt: int) -> bool:
        """Whether ``attempt`` is still the job's live, running attempt."""
        return job.attempt == attempt and job.status is JobStatus.IN_PROGRESS and not job.removed

    def start(self, job: Job, worker_id: str) -> None:
        job.status = JobStatus.IN_PROGRESS
        job.started_at = time.monotonic()
        job.worker_id = worker_id
        job.notify()

    def add_chunk(self, job: Job, attempt: int, item: Chunk) -> None:
        if self.current(job, attempt):
            job.chunks.append(item)
            job.notify()

    def set_progress(self, job: Job, attempt: int, value: msgspec.Raw) -> None:
        if self.current(job, attempt):
            job.progress = value
            job.notify()

    def finish(self, job: Job, status: JobStatus, outcome: Outcome | None = None) -> None:
        """Move a live job to a terminal ``status``; a terminal or removed job is left alone."""
        if job.terminal or job.removed:
            return
        job.status = status
        job.finished_at = time.monotonic()
        if outcome is not None:
            job.output, job.error = outcome.output, outcome.error
        job.progress = None
        job.task = None
        counts = self.counts.setdefault(job.endpoint_id, Counter())
        if status is JobStatus.COMPLETED:
            counts["completed"] += 1
        elif status in (JobStatus.FAILED, JobStatus.TIMED_OUT):
            counts["failed"] += 1
        self._expire_in(job, job.result_ttl_s)
        self._on_terminal(job)
        job.notify()

    def requeue(self, job: Job) -> None:
        """/retry: same id and input, a fresh attempt with the old results cleared."""
        job.status = JobStatus.IN_QUEUE
        job.attempt += 1
        job.retries += 1
        job.queued_at = time.monotonic()
        job.started_at = job.finished_at = None
        job.worker_id = None
        job.output = job.error = job.progress = None
        job.chunks = []
        job.stream_cursor = 0
        self.counts.setdefault(job.endpoint_id, Counter())["retried"] += 1
        self._expire_in(job, job.ttl_s)
        job.notify()

    def _expire_in(self, job: Job, delay_s: float) -> None:
        if job.timer is not None:
            job.timer.cancel()
        job.expires_at = time.monotonic() + delay_s
        job.timer = asyncio.get_running_loop().call_later(delay_s, self.remove, job)
