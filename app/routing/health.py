"""What the gateway knows about each RunPod endpoint's health, held in process.

Two sources: RunPod's ``/health`` (workers idle/ready/running, jobs in queue/in progress), and
the gateway's own outcomes per endpoint (429, 5xx, timeouts count as failures; latency of
successes). The request path only reads and bumps plain attributes here (no I/O, no locks);
``app/routing/health_sync.py`` polls RunPod and shares everything through Redis in the
background, so every replica sees the same picture a few seconds late.

Cooling: ``cooling_failures`` failures in a row take an endpoint out of rotation for
``cooling_s`` (on this replica at once, on the others at their next sync).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from app.routing.schema import HealthConfig

# Operations whose outcome says something about an endpoint's serving health (not job polls).
_SERVING_OPS = frozenset({"run", "runsync"})
_LATENCY_SAMPLES = 64


@dataclass(slots=True)
class EndpointHealth:
    # From RunPod's /health (None: never seen).
    idle: int | None = None
    running: int = 0
    in_queue: int = 0
    in_progress: int = 0
    polled_at: float = 0.0
    # The gateway's own outcomes, since the last sync (shared through Redis there).
    new_ok: int = 0
    new_failed: int = 0
    consecutive_failures: int = 0
    # Error rate over the window, all replicas (set by the sync); latency p50 of this replica.
    error_rate: float = 0.0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=_LATENCY_SAMPLES))
    latency_p50: float | None = None
    cool_until: float = 0.0
    # Cooling decided here and not yet shared.
    cool_pending: bool = False

    @property
    def backlogged(self) -> bool:
        """Jobs wait and no worker is free: new work would queue behind them."""
        return self.in_queue > 0 and not self.idle

    @property
    def spare(self) -> int:
        """Free workers minus waiting jobs (throughput sort); 0 when unknown."""
        return (self.idle or 0) - self.in_queue


def is_failure(status: str) -> bool | None:
    """True for a failure, False for a success, None when the outcome says nothing (4xx, cancel)."""
    if status in ("timeout", "unreachable", "error"):
        return True
    if not status.isdigit():
        return None
    code = int(status)
    if code == 429 or code >= 500:
        return True
    return False if code < 400 else None


class HealthBoard:
    """Per-endpoint health, keyed by RunPod endpoint id."""

    def __init__(self, config: HealthConfig | None = None) -> None:
        self.config = config or HealthConfig()
        self.endpoints: dict[str, EndpointHealth] = {}

    def get(self, endpoint_id: str) -> EndpointHealth | None:
        return self.endpoints.get(endpoint_id)

    def entry(self, endpoint_id: str) -> EndpointHealth:
        state = self.endpoints.get(endpoint_id)
        if state is None:
            state = self.endpoints[endpoint_id] = EndpointHealth()
        return state

    def cooling(self, endpoint_id: str, now: float) -> bool:
        state = self.endpoints.get(endpoint_id)
        return state is not None and state.cool_until > now

    def observe(self, endpoint_id: str, operation: str, status: str, seconds: float) -> None:
        """One finished RunPod call (the client reports every one; job polls are not judged)."""
        if operation not in _SERVING_OPS and not operation.startswith("openai."):
            return
        failed = is_failure(status)
        if failed is None or not endpoint_id or endpoint_id == "-":
            return
        if failed:
            self.failed(endpoint_id)
        else:
            self.succeeded(endpoint_id, seconds)

    def succeeded(self, endpoint_id: str, seconds: float | None = None) -> None:
        state = self.entry(endpoint_id)
        state.new_ok += 1
        state.consecutive_failures = 0
        if seconds is not None:
            state.latencies.append(seconds)

    def failed(self, endpoint_id: str) -> None:
        state = self.entry(endpoint_id)
        state.new_failed += 1
        state.consecutive_failures += 1
        if state.consecutive_failures >= self.config.cooling_failures:
            state.consecutive_failures = 0
            state.cool_until = time.time() + self.config.cooling_s
            state.cool_pending = True

    def refresh_latency(self) -> None:
        """Recompute each p50 off the request path (the selector reads the number only)."""
        for state in self.endpoints.values():
            if state.latencies:
                ordered = sorted(state.latencies)
                state.latency_p50 = ordered[len(ordered) // 2]
