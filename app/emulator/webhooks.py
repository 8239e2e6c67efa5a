"""RunPod-style webhook callbacks: POST the status body; 2 more tries if it is not taken.

Deliveries run as background tasks and never hold up job processing. Logs name the job id
only: neither the payload nor the URL (which often carries a signature) is logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import msgspec

log = logging.getLogger("app.emulator")

ATTEMPTS = 3  # the first try and RunPod's "up to 2 more times"
TIMEOUT_S = 10.0


class WebhookSender:
    def __init__(self, retry_delay_s: float) -> None:
        self.retry_delay_s = retry_delay_s
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=TIMEOUT_S,
            follow_redirects=False,
            trust_env=False,
            headers={"content-type": "application/json", "user-agent": "dryapi-runpod-emulator"},
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def send(self, job_id: str, url: str, body: dict[str, Any]) -> None:
        if self._client is None:
            return
        task = asyncio.create_task(self._deliver(self._client, job_id, url, msgspec.json.encode(body)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, client: httpx.AsyncClient, job_id: str, url: str, payload: bytes) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            if attempt > 1:
                await asyncio.sleep(self.retry_delay_s)
            try:
                response = await client.post(url, content=payload)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                outcome = type(exc).__name__
            else:
                if 200 <= response.status_code < 300:
                    log.debug("emulator webhook for job %s delivered (attempt %d)", job_id, attempt)
                    return
                outcome = f"HTTP {response.status_code}"
            log.info("emulator webhook for job %s failed (attempt %d/%d): %s", job_id, attempt, ATTEMPTS, outcome)
        log.warning("emulator webhook for job %s gave up after %d attempts", job_id, ATTEMPTS)
