"""GET /admin/usage: a key's usage per UTC day and surface (admin keys only)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get
from litestar.datastructures import State
from litestar.params import Parameter

from app import docs
from app.auth import require_admin
from app.services import Services
from app.usage import report, report_range

_EXAMPLE = {
    "object": "usage.report",
    "key_id": "key_0123456789abcdef",
    "from": "2025-01-30",
    "to": "2025-01-31",
    "days": [
        {"date": "2025-01-30", "surfaces": {}},
        {
            "date": "2025-01-31",
            "surfaces": {
                "chat": {"requests": 12, "prompt_tokens": 3400, "completion_tokens": 2100},
                "images": {"requests": 2, "images": 3, "megapixels": 3.145728},
            },
        },
    ],
    "totals": {
        "chat": {"requests": 12, "prompt_tokens": 3400, "completion_tokens": 2100},
        "images": {"requests": 2, "images": 3, "megapixels": 3.145728},
    },
}


@get(
    "/admin/usage",
    guards=[require_admin],
    tags=["admin"],
    summary="Usage of one API key per UTC day and surface",
    responses=docs.USAGE_RESPONSES,
    description=(
        "Counts successful requests, chat prompt/completion tokens, embeddings input tokens, images and "
        "megapixels, and seconds of transcribed audio. `from`/`to` are UTC dates (YYYY-MM-DD, default today), "
        f"inclusive. Example answer: {msgspec.json.encode(_EXAMPLE).decode()}"
    ),
)
async def usage_report(
    state: State,
    key_id: str = Parameter(query="key_id", min_length=1, description="the key's id, e.g. key_0123456789abcdef"),
    from_: str | None = Parameter(query="from", default=None, description="first UTC day, YYYY-MM-DD"),
    to: str | None = Parameter(query="to", default=None, description="last UTC day, YYYY-MM-DD"),
) -> Response[bytes]:
    services: Services = state.services
    start, end = report_range(from_, to)
    body: dict[str, Any] = await report(services.redis, services.keys, key_id, start, end)
    return Response(content=msgspec.json.encode(body), media_type="application/json")
