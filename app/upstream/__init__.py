"""Talking to RunPod: the pooled HTTP client, SSE parsing and worker error normalisation."""

from app.upstream.client import RunPodClient
from app.upstream.sse import SSEParser
from app.upstream.worker_errors import error_from_status, worker_error

__all__ = ["RunPodClient", "SSEParser", "error_from_status", "worker_error"]
