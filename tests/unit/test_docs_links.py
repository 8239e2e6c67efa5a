"""The OpenAPI document links each enqueue answer to the job routes."""

from __future__ import annotations

import textwrap
from typing import Any

from app.main import create_app
from app.routing.loader import parse_routing
from app.settings import Settings
from tests.gateway.conftest import ROUTING


def test_enqueue_answers_link_to_the_job_routes() -> None:
    routing = ROUTING.format(upstream="http://127.0.0.1:9/v2", runpod_key="k", limited="http://127.0.0.1:9/v2")
    app = create_app(Settings(), parse_routing(textwrap.dedent(routing), "routing.yaml"))
    doc: dict[str, Any] = app.openapi_schema.to_schema()
    operation_ids = {op["operationId"] for item in doc["paths"].values() for op in item.values() if "operationId" in op}
    for path, surface in [("/v1/chat/completions", "chat"), ("/v1/audio/transcriptions", "transcribe")]:
        links = doc["paths"][path]["post"]["responses"]["202"]["links"]
        assert set(links) == {"GetJob", "DownloadJob", "CancelJob"}
        for link in links.values():
            assert link["operationId"] in operation_ids
            assert link["parameters"] == {"surface": surface, "jobId": "$response.body#/id"}
