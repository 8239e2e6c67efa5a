"""OpenAPI links from the enqueue answers (202) to the job routes.

A client generator, or a fuzzer's stateful phase, learns from them that the ``id`` of an
enqueued job is the ``jobId`` of ``/v1/jobs/{surface}/{jobId}`` and its download and cancel.
"""

from __future__ import annotations

from litestar.openapi.spec import Link, OpenAPI, OpenAPIResponse, Operation

_ENQUEUE = {
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/images/generations": "images",
    "/v1/audio/transcriptions": "transcribe",
}
_JOB_ROUTES = {
    "GetJob": ("/v1/jobs/{surface}/{jobId}", "get", "The job's status."),
    "DownloadJob": ("/v1/jobs/{surface}/{jobId}/download", "get", "The job's result, once completed."),
    "CancelJob": ("/v1/jobs/{surface}/{jobId}/cancel", "post", "Cancel the job."),
}


def _operation(openapi: OpenAPI, path: str, method: str) -> Operation | None:
    item = (openapi.paths or {}).get(path)
    operation = getattr(item, method, None) if item is not None else None
    return operation if isinstance(operation, Operation) else None


def add_job_links(openapi: OpenAPI) -> None:
    for path, surface in _ENQUEUE.items():
        enqueue = _operation(openapi, path, "post")
        accepted = (enqueue.responses or {}).get("202") if enqueue else None
        if not isinstance(accepted, OpenAPIResponse):
            continue
        links: dict[str, Link] = {}
        for name, (target, method, description) in _JOB_ROUTES.items():
            operation = _operation(openapi, target, method)
            if operation is not None and operation.operation_id:
                parameters = {"surface": surface, "jobId": "$response.body#/id"}
                links[name] = Link(operation_id=operation.operation_id, parameters=parameters, description=description)
        accepted.links = {**(accepted.links or {}), **links}
