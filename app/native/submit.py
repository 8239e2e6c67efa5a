"""Submitting a native task: read the body, validate every field, stage files, start the job.

Every check runs before a job exists, so a bad request costs nothing and names every bad
field at once (one 422). The answer is the seeds' envelope, ``{"data": {"request_id"}}``, and
the request id is the RunPod job id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request

from app.auth import Principal, principal_of
from app.billing import charge
from app.billing.quote import quote, tier_multiplier
from app.errors import FieldsInvalid, GatewayError
from app.jobs.records import JobRecord
from app.jobs.runner import Call, start_job
from app.limits import limit_request
from app.native.body import TaskBody, read_task_body
from app.netguard import check_url
from app.routing.resolver import find_model
from app.routing.schema import ModelRoute
from app.services import Services
from app.tasks.common import with_model_defaults
from app.tasks.spec import TaskSpec, Upload
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


@dataclass(frozen=True)
class Checked:
    """A task request whose every field passed: its parameters, files and model."""

    body: TaskBody
    params: Any
    uploads: dict[str, list[Upload]]
    model: str
    route: ModelRoute


def check_body(services: Services, spec: TaskSpec, body: TaskBody) -> Checked:
    """Validate a task's fields and files, however they arrived; one 422 naming every bad field."""
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
    # What the worker runs and the price is computed for: the model's defaults filled in.
    return Checked(body, with_model_defaults(params, model[1]), uploads, model[0], model[1])


async def check_request(request: Request[Any, Any, Any], services: Services, spec: TaskSpec) -> Checked:
    """Read and validate a task's body; one 422 naming every bad field."""
    return check_body(services, spec, await read_task_body(request, spec))


async def submit_task(request: Request[Any, Any, Any], spec: TaskSpec) -> dict[str, Any]:
    principal = principal_of(request)
    await limit_request(request, principal, spec.surface, spec.name)
    record = await submit_body(request, spec, principal, await read_task_body(request, spec))
    return {"data": {"request_id": record.id}}


async def submit_body(
    request: Request[Any, Any, Any], spec: TaskSpec, principal: Principal, body: TaskBody
) -> JobRecord:
    """Start ``spec``'s job from an already-read body (the HTTP route's or an MCP tool's
    arguments), as ``principal``: validated, priced and held, files staged. Rate limits are
    the caller's, counted before the body is read."""
    services: Services = request.app.state.services
    checked = check_body(services, spec, body)
    params = checked.params
    webhook_url = await _webhook_url(services, principal, getattr(params, "webhook_url", None))
    options: dict[str, Any] = {"dialect": "native", "task": spec.name,
                               "include_ts": bool(getattr(params, "include_ts", False))}
    billing = services.routing.config.billing
    if billing.enabled:  # before anything is staged: a refused job costs nothing
        priced = quote(spec, params, checked.uploads, checked.route, billing, principal.tier)
        options["billing"] = await charge.hold(services, principal.key_id, priced, task=spec.name,
                                               model=checked.model, multiplier=tier_multiplier(billing, principal.tier))
    try:
        route = services.resolve(spec.surface, checked.model)
        urls = await stage(services.files, body.files, checked.uploads)
        job_input = spec.worker_input(params, route.upstream_model, urls)
        record = await start_job(Call(services, request, principal, route), job_input, webhook_url=webhook_url,
                                 options=options)
    except BaseException:
        if "billing" in options:  # no job: nothing to pay for
            await charge.release(services, principal.key_id, options["billing"])
        raise
    return record
