"""Submitting a native task: read the body, validate every field, stage files, start the job.

Every check runs before a job exists, so a bad request costs nothing and names every bad
field at once (one 422). The answer is the seeds' envelope, ``{"data": {"request_id"}}``, and
the request id is the RunPod job id.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from app.auth import Principal, principal_of
from app.errors import FieldsInvalid, GatewayError
from app.jobs.runner import Call, start_job
from app.limits import limit_request
from app.native.body import read_task_body
from app.netguard import check_url
from app.routing.resolver import find_model
from app.routing.schema import ModelRoute
from app.services import Services
from app.tasks.common import with_model_defaults
from app.tasks.spec import TaskSpec
from app.tasks.uploads import check_files, stage
from app.tasks.validation import FieldErrors, convert_fields


def _model(services: Services, spec: TaskSpec, name: str) -> tuple[str, ModelRoute] | FieldErrors:
    surface = services.routing.config.surfaces.get(spec.surface)
    found = find_model(surface, name) if surface is not None else None
    if found is None:
        return [("model", "The selected model does not exist.")]
    if spec.inference_type not in found[1].inference_types:
        return [("model", f"The selected model does not support {spec.name}.")]
    return found


async def _webhook_url(services: Services, principal: Principal, named: str | None) -> str | None:
    if named:
        try:
            await check_url(named, param="webhook_url", allowlist=services.settings.webhook_allowlist,
                            require_https=True)
        except GatewayError as exc:
            raise FieldsInvalid([("webhook_url", exc.message)]) from None
        return named
    return principal.webhook_url or None


async def submit_task(request: Request[Any, Any, Any], spec: TaskSpec) -> dict[str, Any]:
    services: Services = request.app.state.services
    principal = principal_of(request)
    await limit_request(request, principal, spec.surface, spec.name)
    body = await read_task_body(request, spec)
    params, errors = convert_fields(spec.params, body.fields)
    uploads, file_errors = check_files(spec, body.files)
    errors = body.errors + errors + file_errors
    model: tuple[str, ModelRoute] | None = None
    if params is not None:
        found = _model(services, spec, params.model)
        if isinstance(found, list):
            errors += found
        else:
            model = found
            errors += spec.check(params, uploads, found[1])
    if errors or params is None or model is None:
        raise FieldsInvalid(errors)
    params = with_model_defaults(params, model[1])
    webhook_url = await _webhook_url(services, principal, getattr(params, "webhook_url", None))
    route = services.resolve(spec.surface, model[0])
    urls = await stage(services.files, body.files, uploads)
    job_input = spec.worker_input(params, route.upstream_model, urls)
    options = {"dialect": "native", "task": spec.name, "include_ts": bool(getattr(params, "include_ts", False))}
    record = await start_job(Call(services, request, principal, route), job_input, webhook_url=webhook_url,
                             options=options)
    return {"data": {"request_id": record.id}}

