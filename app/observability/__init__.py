"""Logs, metrics, request ids, readiness, CORS and graceful shutdown for the gateway.

``plugin.ObservabilityPlugin`` wires it all into ``create_app``. Low-level modules
(``timing``, ``shutdown``) import nothing from the rest of the app, so the RunPod client
and the SSE relay can use them; this package file imports nothing for the same reason.
"""
