"""Every Prometheus metric the gateway exports, defined once.

Multi-process safe: with ``PROMETHEUS_MULTIPROC_DIR`` set (``serve --workers N`` sets it),
prometheus-client writes per-process files and ``/metrics`` aggregates them. Labels never
carry key ids or anything per-tenant (cardinality), only route templates, surfaces, tiers,
endpoints and outcomes.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_OVERHEAD = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)

REQUESTS = Counter("dryapi_requests_total", "HTTP requests served", ["route", "method", "status"])
REQUEST_DURATION = Histogram(
    "dryapi_request_duration_seconds", "HTTP request duration", ["route", "method", "status"], buckets=_LATENCY
)
UPSTREAM_DURATION = Histogram(
    "dryapi_upstream_request_duration_seconds",
    "RunPod call duration",
    ["endpoint", "operation", "status"],
    buckets=_LATENCY,
)
GATEWAY_OVERHEAD = Histogram(
    "dryapi_gateway_overhead_seconds", "Time a request spent in the gateway outside upstream calls", buckets=_OVERHEAD
)
STREAM_FIRST_CHUNK = Histogram(
    "dryapi_stream_first_chunk_seconds", "Time from request to the first streamed chunk", buckets=_LATENCY
)
JOBS = Counter("dryapi_jobs_total", "Jobs that reached a terminal state", ["surface", "status"])
WEBHOOK_DELIVERIES = Counter("dryapi_webhook_deliveries_total", "Client webhook delivery outcomes", ["outcome"])
WEBSOCKETS = Gauge("dryapi_websocket_connections", "Open job WebSocket connections", multiprocess_mode="livesum")
RATE_LIMITED = Counter("dryapi_rate_limited_total", "Requests refused by a rate limit", ["tier", "surface"])
ROUTING_RELOADS = Counter("dryapi_routing_reloads_total", "routing.yaml reload attempts", ["result"])
# Endpoint ids come from routing.yaml (bounded); reasons from app/routing/fallback.py.
ENDPOINT_CHOSEN = Counter(
    "dryapi_endpoint_chosen_total", "Requests served per chosen RunPod endpoint", ["surface", "endpoint"]
)
FALLBACKS = Counter(
    "dryapi_fallbacks_total",
    "Attempts passed over for the next endpoint or model (reason: unknown_model, no_endpoint, "
    "no_matching_endpoint, cooling, upstream_429, upstream_5xx, unreachable, timeout)",
    ["surface", "endpoint", "reason"],
)
