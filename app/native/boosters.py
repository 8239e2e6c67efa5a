"""The prompt boosters (``/api/v1/client/prompt/*``) and sample prompts: synchronous answers
from a chat model, in the shapes the seeds show (reference §5)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.handlers import HTTPRouteHandler

from app.auth import principal_of
from app.docs.tags import TAG_NATIVE_UTILITIES
from app.errors import FieldsInvalid, UpstreamError
from app.limits import limit_request
from app.native.body import read_task_body
from app.routing.resolver import Route
from app.services import Services
from app.tasks.boosters import MAX_TOKENS, BoosterParams, SampleParams, booster_messages, parse_answer, sample_messages
from app.tasks.common import TaskParams
from app.tasks.spec import IMAGE_FORMATS, MB, FileRule, TaskSpec
from app.tasks.uploads import check_files, stage
from app.tasks.validation import convert_fields

PREFIX = "/api/v1/client"
# kind → its image: required (True), optional (False) or not taken (None).
_BOOSTERS = {"image": None, "video": False, "speech": None, "image2image": True}


def _chat_route(services: Services, *, sees: bool) -> Route:
    """The chat surface's default model; one that serves OCR (it sees) when an image comes along."""
    surface = services.routing.config.surfaces.get("chat")
    model = None
    if sees and surface is not None:
        model = next((slug for slug, m in surface.models.items() if "img2txt" in m.inference_types), None)
    return services.resolve("chat", model)


async def _ask(services: Services, messages: list[dict[str, Any]], *, sees: bool) -> str:
    route = _chat_route(services, sees=sees)
    body = {"model": route.upstream_model, "messages": messages, "response_format": {"type": "json_object"},
            "temperature": 0.7, "max_tokens": MAX_TOKENS}
    content = await services.client.openai_json(route, "chat/completions", body, route.sync_timeout_s)
    try:
        completion = msgspec.json.decode(content)
        return str(completion["choices"][0]["message"]["content"] or "")
    except (msgspec.DecodeError, KeyError, IndexError, TypeError):
        raise UpstreamError("The chat worker's answer is not a chat completion", code="upstream_bad_response") from None


def _booster_route(kind: str, image: bool | None) -> HTTPRouteHandler:
    files = () if image is None else (FileRule("image", IMAGE_FORMATS, 10 * MB, required=image),)
    spec = TaskSpec(f"prompt/{kind}", "chat", "", TaskParams, files=files)

    async def boost(request: Request[Any, Any, Any]) -> dict[str, Any]:
        services: Services = request.app.state.services
        await limit_request(request, principal_of(request), "chat")
        body = await read_task_body(request, spec)
        params, errors = convert_fields(BoosterParams, body.fields)
        uploads, file_errors = check_files(spec, body.files)
        errors = body.errors + errors + file_errors
        if errors or params is None:
            raise FieldsInvalid(errors)
        urls = await stage(services.files, body.files, uploads)
        image_url = urls["image"][0] if urls.get("image") else None
        answer = parse_answer(await _ask(services, booster_messages(kind, params, image_url), sees=bool(image_url)))
        return {"prompt": answer["prompt"]} if kind == "speech" else answer

    return post(
        f"{PREFIX}/prompt/{kind}",
        name=f"native-prompt-{kind}",
        operation_id=f"native_prompt_{kind}",
        summary=f"Improve a {kind} prompt",
        description="A chat model rewrites the prompt (JSON answer; plain text counts as the prompt).",
        tags=[TAG_NATIVE_UTILITIES],
        status_code=200,
        request_max_body_size=11 * MB,
    )(boost)


@get(
    f"{PREFIX}/prompts/samples",
    summary="Generate a sample prompt",
    description="`type`: `text2image` or `text2speech` (`image`/`speech` accepted); optional `topic`, `lang_code`.",
    tags=[TAG_NATIVE_UTILITIES],
)
async def sample_prompt(request: Request[Any, Any, Any]) -> dict[str, Any]:
    services: Services = request.app.state.services
    await limit_request(request, principal_of(request), "chat")
    params, errors = convert_fields(SampleParams, dict(request.query_params))
    if errors or params is None:
        raise FieldsInvalid(errors)
    answer = parse_answer(await _ask(services, sample_messages(params), sees=False))
    kind = "text2image" if params.type in ("text2image", "image") else "text2speech"
    return {"success": True, "data": {"type": kind, "prompt": answer["prompt"]}}


BOOSTER_ROUTES: list[Any] = [*(_booster_route(kind, image) for kind, image in _BOOSTERS.items()), sample_prompt]
