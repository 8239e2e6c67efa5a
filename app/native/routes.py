"""The native task API's routes: one POST per task, request status, and the models catalogue."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter

from app.auth import principal_of
from app.docs.native import task_operation
from app.docs.tags import (
    TAG_NATIVE_ANALYSIS,
    TAG_NATIVE_GENERATION,
    TAG_NATIVE_TRANSFORMATION,
    TAG_NATIVE_UTILITIES,
)
from app.errors import FieldsInvalid, NotFound
from app.jobs.access import current_status
from app.limits import limit_request, rate_headers
from app.native.boosters import BOOSTER_ROUTES
from app.native.catalogue import InvalidQuery, parse_query, render_page
from app.native.status import native_status
from app.native.submit import submit_task
from app.services import Services
from app.tasks.registry import TASKS
from app.tasks.spec import TaskSpec

PREFIX = "/api/v1/client"
_TAGS = {
    "txt2img": TAG_NATIVE_GENERATION, "txt2audio": TAG_NATIVE_GENERATION, "txt2music": TAG_NATIVE_GENERATION,
    "txt2video": TAG_NATIVE_GENERATION, "img2video": TAG_NATIVE_GENERATION, "aud2video": TAG_NATIVE_GENERATION,
    "img2img": TAG_NATIVE_TRANSFORMATION, "img-rmbg": TAG_NATIVE_TRANSFORMATION,
    "img-upscale": TAG_NATIVE_TRANSFORMATION,
}
# Uploads: 80 MB media plus room for the multipart envelope and the other fields.
_BODY_LIMIT = 81 * 1024 * 1024


def _submit_route(spec: TaskSpec) -> HTTPRouteHandler:
    async def submit(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await submit_task(request, spec)

    return post(
        f"{PREFIX}/{spec.name}",
        name=f"native-{spec.name}",
        operation_id=f"native_{spec.name.replace('-', '_')}",
        summary=f"Submit a {spec.name} job",
        description=f"Runs `{spec.name}` on a model whose `inference_types` list `{spec.inference_type}`. "
        "Accepts JSON, multipart/form-data and form-urlencoded bodies; answers `{\"data\": {\"request_id\"}}` "
        "at once; poll `request-status/{request_id}` (or use webhooks) for the result.",
        tags=[_TAGS.get(spec.name, TAG_NATIVE_ANALYSIS)],
        status_code=200,
        request_max_body_size=_BODY_LIMIT,
        middleware=[rate_headers],
        operation_class=task_operation(spec),
    )(submit)


SUBMIT_ROUTES = [_submit_route(spec) for spec in TASKS.values()]


@get(
    f"{PREFIX}/request-status/{{request_id:str}}",
    summary="Get a native job's status and result",
    description="`pending`, `processing`, `done` or `error`; `result_url` links to the file once done, "
    "`result` holds text results. Only the key that submitted the job sees it.",
    tags=[TAG_NATIVE_UTILITIES],
    middleware=[rate_headers],
)
async def request_status(request_id: str, request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    services: Services = state.services
    principal = principal_of(request)
    await limit_request(request, principal, None, "request-status")
    record = await services.jobs.get(request_id)
    visible = record is not None and (principal.admin or record.owner == principal.key_id)
    if record is None or not visible or record.options.get("dialect") != "native":
        raise NotFound("Request not found.", code="job_not_found")
    body = await current_status(services, state.tracker, state.watcher, record)
    return {"data": native_status(body)}


@get(
    f"{PREFIX}/models",
    summary="List the models of the native task API",
    description="A paginated catalogue (`data`, `links`, `meta`); `filter[inference_types]` takes one type or a "
    "comma-separated list (any of them); `page` and `per_page` (at most 100).",
    tags=[TAG_NATIVE_UTILITIES],
)
async def native_models(
    request: Request[Any, Any, Any],
    state: State,
    inference_types: str | None = Parameter(query="filter[inference_types]", default=None, required=False),
) -> Response[Any]:
    # The query is read whole below; ``inference_types`` is declared for the OpenAPI document.
    services: Services = state.services
    params = dict(request.query_params)
    try:
        query = parse_query(params)
    except InvalidQuery as exc:
        raise FieldsInvalid(exc.errors) from None
    url = f"{services.settings.public_url.rstrip('/')}{PREFIX}/models"
    return Response(content=render_page(services.routing.config, query, url))


NATIVE_ROUTES: list[Any] = [*SUBMIT_ROUTES, request_status, native_models, *BOOSTER_ROUTES]
