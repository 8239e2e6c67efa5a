"""The one table of OpenAI → handler field names for the job dialects (images, transcribe).

Stock RunPod workers reject keys they do not know, so only these keys, plus a route's
``pass_through`` list, reach a handler. ``webhook_url`` never does.
"""

from __future__ import annotations

from typing import Any

from app.routing.resolver import Route

IMAGES_FIELDS: dict[str, str] = {
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "n": "num_images",
    "steps": "num_inference_steps",
    "seed": "seed",
    "guidance_scale": "guidance_scale",
    # `size` becomes `width` and `height`; `model` becomes the route's upstream model.
}

TRANSCRIBE_FIELDS: dict[str, str] = {
    "prompt": "initial_prompt",
    "language": "language",
    "temperature": "temperature",
    # `timestamp_granularities[]=word` becomes `word_timestamps: true`; `model` as above.
}


def handler_input(table: dict[str, str], body: dict[str, Any], route: Route) -> dict[str, Any]:
    """Map the client's set fields through ``table``; copy the route's ``pass_through`` keys."""
    mapped: dict[str, Any] = {"model": route.upstream_model}
    for client_key, handler_key in table.items():
        value = body.get(client_key)
        if value is not None:
            mapped[handler_key] = value
    for key in route.pass_through:
        if key in body and key not in ("webhook_url",):
            mapped[key] = body[key]
    return mapped
