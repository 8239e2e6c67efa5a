"""The emulator's operations (run, status, cancel, retry, purge, health), independent of HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

import msgspec

from app.emulator.config import EmulatorEndpoint, Timings
from app.emulator.render import status_body
from app.emulator.runner import EndpointRunner
from app.emulator.store import Job, JobStatus, JobStore
from app.emulator.webhooks import WebhookSender

log = logging.getLogger("app.emulator")


class Emulator:
    def __init__(self, endpoints: Mapping[str, EmulatorEndpoint], timings: Timings, *, preload: bool) -> None:
        for endpoint_id in endpoints:
            if not endpoint_id or "/" in endpoint_id:
                raise ValueError(f"invalid endpoint id {endpoint_id!r}")
        self.timings = timings
        self.preload = preload
        self.store = JobStore(on_terminal=self._on_terminal, on_remove=self._on_remove)
        self.runners = {eid: EndpointRunner(eid, spec, self.store) for eid, spec in endpoints.items()}
        self.webhooks = WebhookSender(retry_delay_s=timings.webhook_retry_delay_s)

    async def start(self) -> None:
        self.webhooks.start()
        for runner in self.runners.values():
            runner.start(self.preload)

    async def stop(self) -> None:
        await asyncio.gather(*(runner.stop() for runner in self.runners.values()))
        self.store.close()
        await self.webhooks.close()

    # jobs ---------------------------------------------------------------------------------

    def submit(
        self,
        endpoint_id: str,
        job_input: msgspec.Raw,
        *,
        sync: bool,
        webhook: str | None = None,
        execution_timeout_s: float | None = None,
        ttl_s: float | None = None,
    ) -> Job:
        t = self.timings
        job = Job(
            endpoint_id,
            job_input,
            webhook=webhook,
            execution_timeout_s=execution_timeout_s or t.default_execution_timeout_s,
            ttl_s=ttl_s or t.default_ttl_s,
            result_ttl_s=t.runsync_result_ttl_s if sync else t.run_result_ttl_s,
        )
        self.store.add(job)
        self.runners[endpoint_id].enqueue(job)
        log.debug("emulator job %s queued on %s", job.id, endpoint_id)
        return job

    def get(self, endpoint_id: str, job_id: str) -> Job | None:
        return self.store.get(endpoint_id, job_id)

    def cancel(self, job: Job) -> None:
        """Cancel a queued or running job; a terminal one is left as it is."""
        if job.terminal or job.removed:
            return
        self.runners[job.endpoint_id].discard(job)
        self.store.finish(job, JobStatus.CANCELLED)

    def retry(self, job: Job) -> bool:
        if job.status not in (JobStatus.FAILED, JobStatus.TIMED_OUT):
            return False
        self.store.requeue(job)
        self.runners[job.endpoint_id].enqueue(job)
        return True

    def purge(self, endpoint_id: str) -> int:
        removed = self.runners[endpoint_id].purge()
        for job in removed:
            self.store.finish(job, JobStatus.CANCELLED)
        return len(removed)

    def delete(self, job: Job) -> None:
        """Forget a job now (a passthrough request's job, once its answer is sent)."""
        self.store.remove(job)

    def health(self, endpoint_id: str) -> dict[str, Any]:
        runner = self.runners[endpoint_id]
        counts = self.store.counts.get(endpoint_id) or Counter()
        return {
            "jobs": {
                "completed": counts.get("completed", 0),
                "failed": counts.get("failed", 0),
                "inProgress": len(runner.running),
                "inQueue": len(runner.queue),
                "retried": counts.get("retried", 0),
            },
            "workers": runner.workers(),
        }

    @staticmethod
    async def wait(job: Job, timeout_s: float | None) -> None:
        """Return when ``job`` is terminal or removed, or after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                while not (job.terminal or job.removed):
                    await job.changed().wait()
        except TimeoutError:
            pass

    # hooks --------------------------------------------------------------------------------

    def _on_terminal(self, job: Job) -> None:
        log.debug("emulator job %s: %s", job.id, job.status)
        if job.webhook:
            self.webhooks.send(job.id, job.webhook, status_body(job, with_input=True))

    def _on_remove(self, job: Job) -> None:
        if not job.terminal:
            self.runners[job.endpoint_id].discard(job)
        log.debug("emulator job %s removed", job.id)
