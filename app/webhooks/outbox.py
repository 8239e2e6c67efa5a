"""Durable, signed client webhooks: a Redis outbox and the worker loop that drains it.

``enqueue`` stores the delivery (its body encoded once, so every retry sends identical
bytes under the same ``X-DryAPI-Delivery-Id``); ``run`` claims due deliveries atomically
(a Lua script moves them from the ``due`` zset to an ``inflight`` zset under a lease), so
any number of replicas share the work and never make the same attempt twice; a claimer
that dies leaves a lease that expires, and whoever claims next makes that attempt again.

Retry: the delay before attempt ``i`` is ``schedule[i]`` seconds, measured from the end of
the previous attempt; when the last attempt fails the delivery is dead (kept for
``dead_ttl_s``). Success is a 2xx within ``timeout_s``; redirects, other statuses,
timeouts, connection errors and SSRF refusals are failed attempts.

Circuit breaker (the seed's): a key's consecutive *failed deliveries* (deliveries that
ended dead) are counted and any delivered one resets the count; at ``breaker_threshold``
the key is paused: its due deliveries are held, neither attempted nor dropped, until
``resume(key_id)``.

Outcomes (``stats`` and ``on_outcome``): each attempt is exactly one of ``delivered``,
``failed_attempt`` or ``refused`` (the SSRF guard stopped it before any socket); a delivery
that ends undelivered also counts ``dead``; a key tripping its breaker counts ``paused``;
a delivery parked because its key is paused counts ``held``.

Logs carry delivery id, key id, event, attempt number, outcome, HTTP status and a short
reason; never the body, the URL or a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import redis.asyncio as aioredis
import structlog

from app.store import Keys
from app.webhooks.delivery import AttemptResult, Resolver, Sender
from app.webhooks.settings import DEFAULT_SCHEDULE
from app.webhooks.signature import sign
from app.webhooks.storage import Claimed, OutboxStorage

log = structlog.get_logger("dryapi.webhooks")

USER_AGENT = "DryAPI-Webhook/1.0"
OUTCOMES = ("delivered", "failed_attempt", "refused", "dead", "paused", "held")
# A claim given back after an internal error (e.g. the secret lookup failed) is retried this much later.
_INTERNAL_RETRY_S = 5.0

SecretFor = Callable[[str], Awaitable[str | None]]
_encode = msgspec.json.Encoder().encode


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class WebhookOutbox:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        secret_for: SecretFor,
        schedule: Sequence[float] = DEFAULT_SCHEDULE,
        allowlist: frozenset[str] = frozenset(),
        timeout_s: float = 10.0,
        breaker_threshold: int = 10,
        poll_interval_s: float = 0.5,
        on_outcome: Callable[[str], None] | None = None,
        lease_s: float | None = None,
        max_concurrency: int = 32,
        delivered_ttl_s: int = 86_400,
        dead_ttl_s: int = 7 * 86_400,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``lease_s`` (default ``timeout_s + 30``) must outlast one attempt, which ``timeout_s`` bounds;
        ``resolver`` and ``ssl_context`` replace the system DNS and trust store (tests, private CAs)."""
        self._schedule = tuple(float(delay) for delay in schedule)
        if not self._schedule or any(not delay >= 0 for delay in self._schedule):
            raise ValueError("schedule must list at least one delay, each >= 0")
        if timeout_s <= 0 or breaker_threshold < 1 or poll_interval_s <= 0 or max_concurrency < 1:
            raise ValueError("timeout_s, poll_interval_s, breaker_threshold and max_concurrency must be positive")
        self._lease_s = timeout_s + 30.0 if lease_s is None else lease_s
        if self._lease_s <= timeout_s:
            raise ValueError("lease_s must be longer than timeout_s")
        self._storage = OutboxStorage(redis, keys)
        self._secret_for = secret_for
        self._allowlist = frozenset(host.lower() for host in allowlist)
        self._timeout_s = timeout_s
        self._threshold = breaker_threshold
        self._poll_s = poll_interval_s
        self._on_outcome = on_outcome
        self._max_concurrency = max_concurrency
        self._delivered_ttl_s = delivered_ttl_s
        self._dead_ttl_s = dead_ttl_s
        self._resolver = resolver
        self._ssl_context = ssl_context
        self._worker_id = uuid.uuid4().hex[:12]
        self._claims = itertools.count()
        self._wake = asyncio.Event()
        self.stats: dict[str, int] = dict.fromkeys(OUTCOMES, 0)

    # public API ----------------------------------------------------------------------

    async def enqueue(self, *, key_id: str, url: str, event: str, data: dict[str, Any]) -> str:
        """Store one delivery and return its id (the ``delivery_id`` and ``X-DryAPI-Delivery-Id``).

        ``event`` is ``job.processing``, ``job.completed`` or ``job.failed``; ``data`` is the
        seed's payload ``data`` object, built by the caller and sent as is (JSON-encodable)::

            {"job_request_id": "<job id>",
             "status": "processing" | "done" | "error",
             "previous_status": "pending" | "processing",
             "job_type": "<surface>",
             # job.processing: "started_at": "<ISO 8601>"
             # job.completed:  "completed_at", "result_url" (signed, needs no key), "processing_time_ms"
             # job.failed:     "failed_at", "error_code" (WORKER_TIMEOUT, PROCESSING_ERROR, CANCELLED, ...),
             #                 "error_message", optionally "processing_time_ms"
            }

        ``url`` should already have passed ``app.netguard.check_url(..., require_https=True)``
        at the request; it is checked again (and resolved) before every attempt.
        """
        delivery_id = str(uuid.uuid4())
        body = _encode({"event": event, "delivery_id": delivery_id, "timestamp": _iso_now(), "data": data})
        await self._storage.enqueue(
            delivery_id, key_id=key_id, url=url, event=event, body=body, delay=self._schedule[0]
        )
        log.info("webhook.enqueued", delivery_id=delivery_id, key_id=key_id, webhook_event=event)
        self._wake.set()
        return delivery_id

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver due webhooks until ``stop`` is set; then let attempts in flight finish (up to ``timeout_s``)."""
        sender = Sender(
            timeout_s=self._timeout_s,
            allowlist=self._allowlist,
            resolver=self._resolver,
            ssl_context=self._ssl_context,
            max_connections=self._max_concurrency,
        )
        tasks: dict[asyncio.Task[None], Claimed] = {}
        relay = asyncio.create_task(self._relay(stop))
        graceful = True
        try:
            while not stop.is_set():
                self._wake.clear()
                delay = await self._tick(sender, tasks)
                if delay > 0 and not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), delay)
        except asyncio.CancelledError:
            graceful = False
            raise
        finally:
            relay.cancel()
            await self._drain(tasks, graceful=graceful)
            await sender.aclose()

    async def resume(self, key_id: str) -> bool:
        """Close a key's breaker and make its held deliveries due now; True when the key was paused."""
        was_paused = await self._storage.resume(key_id)
        log.info("webhook.resumed", key_id=key_id, was_paused=was_paused)
        self._wake.set()
        return was_paused

    async def status(self, key_id: str) -> dict[str, Any]:
        """``{"paused": bool, "consecutive_failures": int, "pending": int}`` (pending includes held)."""
        return await self._storage.status(key_id)

    async def delivery(self, delivery_id: str) -> dict[str, Any] | None:
        """One delivery's record for inspection (state, attempts, last_status, last_error; no body or URL)."""
        return await self._storage.delivery(delivery_id)

    # worker loop ---------------------------------------------------------------------

    async def _relay(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _tick(self, sender: Sender, tasks: dict[asyncio.Task[None], Claimed]) -> float:
        """Claim what is due and start it; return how long to sleep unless woken."""
        free = self._max_concurrency - len(tasks)
        if free <= 0:
            return self._poll_s  # a finishing attempt wakes the loop
        token = f"{self._worker_id}:{next(self._claims)}"
        try:
            batch = await self._storage.claim(free, lease_s=self._lease_s, token=token)
        except Exception as exc:
            log.warning("webhook.claim_failed", error=type(exc).__name__)
            return self._poll_s
        for delivery_id, key_id in batch.held:
            log.info("webhook.held", delivery_id=delivery_id, key_id=key_id)
            self._count("held")
        for item in batch.claimed:
            task = asyncio.create_task(self._attempt(sender, item))
            tasks[task] = item
            task.add_done_callback(lambda done: self._finished(tasks, done))
        if len(batch.claimed) >= free:
            return 0.0
        if batch.next_due is None:
            return self._poll_s
        return min(self._poll_s, max(0.0, batch.next_due - batch.now))

    def _finished(self, tasks: dict[asyncio.Task[None], Claimed], task: asyncio.Task[None]) -> None:
        tasks.pop(task, None)
        self._wake.set()

    async def _drain(self, tasks: dict[asyncio.Task[None], Claimed], *, graceful: bool) -> None:
        if tasks and graceful:
            await asyncio.wait(list(tasks), timeout=self._timeout_s + 1.0)
        leftover = dict(tasks)
        for task in leftover:
            task.cancel()
        if not leftover:
            return
        await asyncio.wait(list(leftover), timeout=1.0)
        # Give the claims back now rather than at lease expiry; the attempt may have reached the
        # receiver, which then sees it again with the same delivery id.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(*(self._storage.release(item, delay=0.0) for item in leftover.values())), 2.0
            )

    async def _attempt(self, sender: Sender, item: Claimed) -> None:
        try:
            try:
                secret = await self._secret_for(item.key_id)
            except Exception as exc:
                log.warning(
                    "webhook.secret_lookup_failed", delivery_id=item.id, key_id=item.key_id, error=type(exc).__name__
                )
                await self._storage.release(item, delay=_INTERNAL_RETRY_S)
                return
            if not secret:
                await self._record(item, AttemptResult(ok=False, error="no_secret", permanent=True), attempted=False)
                return
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "X-DryAPI-Event": item.event,
                "X-DryAPI-Delivery-Id": item.id,
                "X-DryAPI-Timestamp": timestamp,
                "X-DryAPI-Signature": sign(secret, timestamp, item.body),
            }
            result = await sender.post(item.url, headers, item.body)
            await self._record(item, result, attempted=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Usually Redis being unreachable: the lease expires and the attempt is made again.
            log.error("webhook.attempt_error", delivery_id=item.id, key_id=item.key_id, error=type(exc).__name__)

    async def _record(self, item: Claimed, result: AttemptResult, *, attempted: bool) -> None:
        number = item.attempt + 1
        if result.ok:
            kind, delay, ttl = "delivered", 0.0, self._delivered_ttl_s
        elif result.permanent or number >= len(self._schedule):
            kind, delay, ttl = "dead", 0.0, self._dead_ttl_s
        else:
            kind, delay, ttl = "retry", self._schedule[number], self._dead_ttl_s
        finished = await self._storage.finish(
            item,
            kind=kind,
            delay=delay,
            status=result.status,
            error=result.error,
            threshold=self._threshold,
            ttl_s=ttl,
            attempted=attempted,
        )
        context = {"delivery_id": item.id, "key_id": item.key_id, "webhook_event": item.event, "attempt": number}
        if not finished.recorded:
            log.warning("webhook.lease_lost", **context)
            return
        if attempted:
            outcome = "delivered" if result.ok else "refused" if result.refused else "failed_attempt"
            self._count(outcome)
            log.info("webhook.attempt", outcome=outcome, status=result.status, reason=result.error or None, **context)
        if kind == "retry":
            log.info("webhook.retry_scheduled", delay_s=delay, **context)
        elif kind == "dead":
            self._count("dead")
            log.warning("webhook.dead", reason=result.error, consecutive_failures=finished.failures, **context)
        if finished.tripped:
            self._count("paused")
            log.warning("webhook.key_paused", key_id=item.key_id, consecutive_failures=finished.failures)

    def _count(self, outcome: str) -> None:
        self.stats[outcome] = self.stats.get(outcome, 0) + 1
        if self._on_outcome is not None:
            try:
                self._on_outcome(outcome)
            except Exception as exc:
                log.warning("webhook.on_outcome_failed", error=type(exc).__name__)
