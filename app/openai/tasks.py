"""The OpenAI routes' side of the task layer: a task's checks and worker input, in OpenAI's words.

A native route names every bad field at once in its own envelope; an OpenAI route answers one
400 naming the client's parameter (``size`` for a width or height, ``n`` for a count).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from app.errors import InvalidRequest
from app.openai._request import validation_error
from app.routing.resolver import Route, find_model
from app.services import Services
from app.tasks.common import TaskParams
from app.tasks.spec import TaskSpec, Uploads

T = TypeVar("T")
# Task field → the OpenAI parameter a client sent it as.
_OPENAI_PARAM = {"width": "size", "height": "size", "guidance": "guidance_scale", "num_images": "n", "text": "input",
                 "instruct": "instructions", "format": "response_format", "images": "image"}


def task_input(
    services: Services,
    spec: TaskSpec,
    params: TaskParams,
    route: Route,
    urls: Mapping[str, list[str]],
    uploads: Uploads | None = None,
) -> dict[str, Any]:
    """``spec``'s worker input for ``params``, after the model's published limits and the
    task's own checks; a model that lists its tasks must list this one."""
    surface = services.routing.config.surfaces.get(route.surface)
    found = find_model(surface, route.public_model) if surface is not None else None
    if found is not None:
        model = found[1]
        if model.inference_types and spec.inference_type not in model.inference_types:
            raise InvalidRequest(f"The model '{route.public_model}' does not serve {spec.name}", param="model",
                                 code="model_not_supported")
        errors = spec.check(params, uploads or {}, model)
        if errors:
            field, message = errors[0]
            raise InvalidRequest(message, param=_OPENAI_PARAM.get(field, field))
    return spec.worker_input(params, route.upstream_model, urls)


def passed_through(body: Mapping[str, Any], route: Route) -> dict[str, Any]:
    """The route's ``pass_through`` keys the client set (stock workers reject unknown keys)."""
    return {key: body[key] for key in route.pass_through if key in body and key != "webhook_url"}


def validate_form(fields: Mapping[str, Any], schema: type[T]) -> T:
    """A multipart body's text fields as ``schema``: numbers arrive as strings."""
    try:
        return msgspec.convert(dict(fields), schema, strict=False)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
