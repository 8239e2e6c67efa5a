"""One endpoint's queue and workers: FIFO jobs, ``concurrency`` at once, timeouts, cancel.

The handler is loaded (imported, in a thread, with the endpoint's ``env``) before its first
job starts, or at startup with ``preload``. Jobs wait IN_QUEUE meanwhile, as they do on
RunPod during a cold start. A handler that fails to load fails every job with the SDK's
error string; the other endpoints keep serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from app.emulator.config import EmulatorEndpoint
from app.emulator.execute import execute
from app.emulator.loader import load_handler
from app.emulator.outcome import Chunk, Outcome, exception_error, snapshot
from app.emulator.store import Job, JobStatus, JobStore

log = logging.getLogger("app.emulator")

PROGRESS_KEY = "_emulator_progress"  # read by handlers/common/progress.py


class EndpointRunner:
    def __init__(self, endpoint_id: str, spec: EmulatorEndpoint, store: JobStore) -> None:
        self.endpoint_id = endpoint_id
        self.spec = spec
        self.store = store
        self.queue: deque[Job] = deque()
        self.running: set[Job] = set()
        self._handler: Callable[..., Any] | None = None
        self._load_error: msgspec.Raw | None = None
        self._loading: asyncio.Task[None] | None = None
        self._has_jobs = asyncio.Event()
        self._slots: list[asyncio.Task[None]] = []

    # lifecycle ----------------------------------------------------------------------------

    def start(self, preload: bool) -> None:
        self._slots = [
            asyncio.create_task(self._slot(f"{self.endpoint_id}-worker-{n}"), name=f"emulator-{self.endpoint_id}-{n}")
            for n in range(self.spec.concurrency)
        ]
        if preload:
            self._load()

    async def stop(self) -> None:
        tasks = [*self._slots, *(job.task for job in self.running if job.task is not None)]
        if self._loading is not None:
            tasks.append(self._loading)
        for job in self.running:
            if job.stop is not None:
                job.stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._slots = []

    # queue --------------------------------------------------------------------------------

    def enqueue(self, job: Job) -> None:
        self.queue.append(job)
        self._has_jobs.set()

    def purge(self) -> list[Job]:
        """Empty the queue (running jobs are untouched); returns the jobs removed."""
        removed = list(self.queue)
        self.queue.clear()
        return removed

    def discard(self, job: Job) -> None:
        """Take ``job`` out of the queue, or stop its running attempt."""
        if job.status is JobStatus.IN_QUEUE:
            with contextlib.suppress(ValueError):
                self.queue.remove(job)
        elif job in self.running:
            if job.stop is not None:
                job.stop.set()
            if job.task is not None:
                job.task.cancel()

    def workers(self) -> dict[str, int]:
        """The endpoint's concurrency slots, in /health's terms."""
        busy = len(self.running)
        free = self.spec.concurrency - busy
        loading = self._loading is not None and not self._loading.done()
        ready = self._handler is not None and not loading
        return {
            "idle": 0 if loading else free,
            "running": busy,
            "initializing": free if loading else 0,
            "ready": free if ready else 0,
            "throttled": 0,
        }

    # workers ------------------------------------------------------------------------------

    async def _slot(self, worker_id: str) -> None:
        while True:
            while not self.queue:
                self._has_jobs.clear()
                await self._has_jobs.wait()
            await self._ensure_loaded()
            if not self.queue:  # cancelled or purged while the handler loaded
                continue
            job = self.queue.popleft()
            try:
                await self._process(job, worker_id)
            except Exception:  # a bug here must not cost the endpoint a worker
                log.exception("emulator job %s: internal error", job.id)
                self.store.finish(job, JobStatus.FAILED, Outcome(error=snapshot("emulator internal error")))

    def _load(self) -> asyncio.Task[None]:
        if self._loading is None:
            self._loading = asyncio.create_task(self._import(), name=f"emulator-load-{self.endpoint_id}")
        return self._loading

    async def _ensure_loaded(self) -> None:
        if self._handler is None and self._load_error is None:
            await asyncio.shield(self._load())

    async def _import(self) -> None:
        spec = self.spec

        def load() -> Callable[..., Any]:
            os.environ.update(spec.env)
            return load_handler(spec.handler) if isinstance(spec.handler, str) else spec.handler

        try:
            self._handler = await asyncio.to_thread(load)
        except Exception as exc:
            log.warning("emulator endpoint %s: handler failed to load: %s", self.endpoint_id, type(exc).__name__)
            self._load_error = exception_error(exc, f"{self.endpoint_id}-loader")
        else:
            log.info("emulator endpoint %s: handler loaded", self.endpoint_id)

    async def _process(self, job: Job, worker_id: str) -> None:
        self.store.start(job, worker_id)
        if self._handler is None:
            self.store.finish(job, JobStatus.FAILED, Outcome(error=self._load_error))
            return
        stop = job.stop = threading.Event()
        task = job.task = asyncio.create_task(self._attempt(job, self._handler, worker_id, stop))
        self.running.add(job)
        try:
            await asyncio.wait({task})  # returns however the attempt ends (even cancelled)
        except asyncio.CancelledError:  # this slot is being stopped
            stop.set()
            task.cancel()
            raise
        finally:
            self.running.discard(job)
        log.debug("emulator job %s on %s: %s", job.id, worker_id, job.status)

    async def _attempt(self, job: Job, handler: Callable[..., Any], worker_id: str, stop: threading.Event) -> None:
        attempt, store, loop = job.attempt, self.store, asyncio.get_running_loop()
        owner = threading.get_ident()

        def on_chunk(item: Chunk) -> None:
            store.add_chunk(job, attempt, item)

        def progress(value: Any) -> None:  # callable from any thread, like progress_update
            try:
                raw = snapshot(value)
            except (TypeError, msgspec.EncodeError):
                return
            if threading.get_ident() == owner:
                store.set_progress(job, attempt, raw)
            else:
                with contextlib.suppress(RuntimeError):  # the loop is gone (shut down)
                    loop.call_soon_threadsafe(store.set_progress, job, attempt, raw)

        arg = {"id": job.id, "input": msgspec.json.decode(job.input), PROGRESS_KEY: progress}
        deadline = asyncio.timeout(job.execution_timeout_s)
        try:
            async with deadline:
                outcome = await execute(
                    handler, arg, on_chunk, stop, worker_id, aggregate_stream=self.spec.return_aggregate_stream
                )
        except TimeoutError:
            if not deadline.expired():
                raise
        if deadline.expired():  # also when the handler swallowed the cancellation
            stop.set()
            store.finish(job, JobStatus.TIMED_OUT)
        elif store.current(job, attempt):
            store.finish(job, JobStatus.FAILED if outcome.error is not None else JobStatus.COMPLETED, outcome)
