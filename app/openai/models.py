"""GET /v1/models and /v1/models/{id}: the public slugs routing.yaml serves."""

from __future__ import annotations

import msgspec
from litestar import get
from litestar.datastructures import State

from app import docs
from app.errors import ModelNotFound, echo
from app.routing.resolver import find_model
from app.services import Services


class Model(msgspec.Struct):
    id: str
    object: str
    created: int
    owned_by: str
    surface: str


class ModelList(msgspec.Struct):
    object: str
    data: list[Model]


def _models(services: Services) -> list[Model]:
    created = int(services.routing.loaded_at)
    seen: set[str] = set()
    models: list[Model] = []
    for surface, config in services.routing.config.surfaces.items():
        for slug, route in config.models.items():
            if slug not in seen:
                seen.add(slug)
                models.append(Model(slug, "model", created, route.owned_by, surface))
    return models


@get(
    "/v1/models",
    summary="List models",
    description="The public model slugs routing.yaml serves, on every surface (OpenAI's model list).",
    tags=["openai"],
    responses=docs.MODEL_RESPONSES,
)
async def list_models(state: State) -> ModelList:
    return ModelList("list", _models(state.services))


@get(
    "/v1/models/{model_id:path}",
    summary="Retrieve a model",
    description="One model by slug or alias; 404 `model_not_found` otherwise.",
    tags=["openai"],
    responses=docs.MODEL_RESPONSES,
)
async def retrieve_model(model_id: str, state: State) -> Model:
    services: Services = state.services
    name = model_id.lstrip("/")
    for surface, config in services.routing.config.surfaces.items():
        found = find_model(config, name)
        if found is not None:
            slug, route = found
            return Model(slug, "model", int(services.routing.loaded_at), route.owned_by, surface)
    raise ModelNotFound(f"The model '{echo(name)}' does not exist", param="model")
