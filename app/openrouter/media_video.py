"""OpenRouter's async video jobs over the video surface and the job engine.

``POST /api/v1/videos`` turns OpenRouter's body into the native ``txt2video`` (or, with a first
frame, ``img2video``) task and starts it exactly as ``/api/v1/client/txt2video`` does (checks,
price hold, staged files, ``start_job``); the answer is 202 with the job id and its polling URL.
``GET /api/v1/videos/{jobId}`` reads the job like ``/v1/jobs`` does and speaks OpenRouter's
statuses; ``GET /api/v1/videos/{jobId}/content`` streams the finished MP4 itself.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter

from app.auth import principal_of
from app.docs.tags import TAG_OPENAI
from app.errors import FieldsInvalid, InvalidRequest, NotFound, UpstreamError
from app.jobs.access import current_status, load_owned
from app.jobs.records import JobRecord
from app.limits import limit_jobs, rate_headers
from app.native.body import TaskBody
from app.native.submit import submit_body
from app.openai._request import admit, decode_object, validate
from app.openai.bounds import INT64_MAX
from app.openai.job_routes import JobNotReady
from app.openrouter import media_sizes
from app.openrouter.media_docs import JOB_ERRORS, SUBMIT_ERRORS
from app.routing.resolver import find_model
from app.routing.schema import ModelRoute
from app.services import Services
from app.tasks.file_values import read_file_value
from app.tasks.video import IMG2VIDEO, TXT2VIDEO

PATH = "/api/v1/videos"
_MAX_VIDEO_BYTES = 512 * 1024 * 1024
# A frame is capped like an uploaded native first/last frame.
_FRAME_MAX_BYTES = next(rule.max_bytes for rule in IMG2VIDEO.files if rule.name == "first_frame_image")
_LEDGER_LOOKBACK = 200  # a finished job's settlement is among its key's newest entries
# The engine's status → OpenRouter's; a job RunPod timed out failed, for the client.
STATUS = {"IN_QUEUE": "pending", "IN_PROGRESS": "in_progress", "COMPLETED": "completed", "FAILED": "failed",
          "CANCELLED": "cancelled", "TIMED_OUT": "failed"}


class ImageURL(msgspec.Struct):
    url: Annotated[str, msgspec.Meta(min_length=1)]


class FrameImage(msgspec.Struct):
    image_url: ImageURL
    frame_type: Literal["first_frame", "last_frame"]
    type: Literal["image_url"] = "image_url"


class VideoGenerationRequest(msgspec.Struct):
    """OpenRouter's ``VideoGenerationRequest``; ``provider``, ``session_id``, ``trace``, ``user`` and
    ``generate_audio`` (the model decides) are accepted and unused."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    prompt: str | None = None
    duration: Annotated[int, msgspec.Meta(ge=1, le=60)] | None = None
    resolution: Literal["360p", "480p", "720p", "768p", "1080p", "1K", "2K", "4K"] | None = None
    aspect_ratio: Annotated[str, msgspec.Meta(max_length=16)] | None = None
    size: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    seed: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)] | None = None
    frame_images: Annotated[list[FrameImage], msgspec.Meta(max_length=2)] | None = None
    input_references: list[Any] | None = None
    callback_url: str | None = None
    previous_job_id: str | None = None
    upscale_factor: float | None = None
    generate_audio: bool | None = None


_UNSUPPORTED = {
    "input_references": "reference images are not supported; give a first frame in frame_images",
    "callback_url": "callbacks are not supported here; poll polling_url",
    "previous_job_id": "extending a previous video is not supported",
    "upscale_factor": "upscaling is not supported",
}


def _fps(route: ModelRoute) -> int:
    fps = route.info.defaults.get("fps")
    return int(fps) if isinstance(fps, int | float) and not isinstance(fps, bool) and fps > 0 else 24


def frames_for(route: ModelRoute, seconds: int) -> int:
    """LTX takes 8k+1 frames: a second is fps frames, plus the first."""
    return seconds * _fps(route) + 1


def _sides(route: ModelRoute, parsed: VideoGenerationRequest) -> tuple[int, int] | None:
    aspect = media_sizes.ratio(parsed.aspect_ratio)
    tier = parsed.resolution
    if parsed.size is not None:
        explicit = media_sizes.pixels(parsed.size)
        if explicit is None:
            raise InvalidRequest("size must look like WIDTHxHEIGHT, e.g. 1280x720", param="size")
        return explicit
    if tier is None:
        return media_sizes.sides(route, aspect=aspect)
    pixels = media_sizes.VIDEO_TIERS[tier]
    if tier.endswith("p"):
        return media_sizes.sides(route, short=pixels, aspect=aspect)
    return media_sizes.sides(route, long=pixels, aspect=aspect)


async def _frame_file(services: Services, index: int, frame: FrameImage) -> bytes:
    """A frame: a data URI, base64, or an http(s) URL the gateway fetches (SSRF-checked)."""
    param = f"frame_images.{index}.image_url.url"
    read = await read_file_value(frame.image_url.url, param, _FRAME_MAX_BYTES, services.settings.media_allowlist)
    if isinstance(read, str):
        raise InvalidRequest(read, param=param)
    return read


async def _task_body(
    services: Services, route: ModelRoute, public_model: str, parsed: VideoGenerationRequest
) -> TaskBody:
    if not parsed.prompt:
        raise InvalidRequest("prompt is required: describe the video", param="prompt")
    fields: dict[str, Any] = {"model": public_model, "prompt": parsed.prompt}
    sides = _sides(route, parsed)
    if sides is not None:
        fields |= {"width": sides[0], "height": sides[1]}
    if parsed.duration is not None:
        fields["frames"] = frames_for(route, parsed.duration)
    if parsed.seed is not None:
        fields["seed"] = parsed.seed
    files: dict[str, list[bytes]] = {}
    for index, frame in enumerate(parsed.frame_images or []):
        name = "first_frame_image" if frame.frame_type == "first_frame" else "last_frame_image"
        if name in files:
            raise InvalidRequest(f"frame_images has two {frame.frame_type} images", param="frame_images")
        files[name] = [await _frame_file(services, index, frame)]
    return TaskBody(fields=fields, files=files)


def _openrouter_fields(exc: FieldsInvalid, parsed: VideoGenerationRequest) -> InvalidRequest:
    """The task's field errors in the words the client used; every bad field named."""
    sized = "size" if parsed.size else "resolution" if parsed.resolution else "aspect_ratio"
    names = {"width": sized, "height": sized, "frames": "duration", "first_frame_image": "frame_images",
             "last_frame_image": "frame_images"}
    named = [(names.get(field, field), message) for field, message in exc.errors]
    error = InvalidRequest("; ".join(f"{field}: {message}" for field, message in named), param=named[0][0])
    error.code = "invalid_value"
    return error


def polling_url(services: Services, job_id: str) -> str:
    return f"{services.settings.public_url.rstrip('/')}{PATH}/{job_id}"


@post(
    PATH,
    summary="Generate a video (OpenRouter)",
    description="OpenRouter's async video generation: `model`, `prompt`, `duration` (seconds), `resolution`, "
    "`aspect_ratio` or `size`, `seed`, `frame_images` (first/last frame as data URIs). Answers 202 "
    "`{id, polling_url, status: pending}`; poll `GET /api/v1/videos/{jobId}`.",
    tags=[TAG_OPENAI],
    status_code=202,
    request_max_body_size=24 * 1024 * 1024,  # two 10 MB frames as base64
    middleware=[rate_headers],
    responses=SUBMIT_ERRORS,
)
async def openrouter_create_video(request: Request[Any, Any, Any]) -> Response[Any]:
    services, principal = await admit(request, "video")
    parsed = validate(decode_object(await request.body()), VideoGenerationRequest)
    for field, reason in _UNSUPPORTED.items():
        if getattr(parsed, field):
            raise InvalidRequest(f"{field}: {reason}", param=field)
    route = services.resolve("video", parsed.model)  # an unknown model: 404, as on every route
    found = find_model(services.routing.config.surfaces["video"], route.public_model)
    if found is None:
        raise InvalidRequest(f"The model '{route.public_model}' does not serve txt2video", param="model")
    body = await _task_body(services, found[1], route.public_model, parsed)
    spec = IMG2VIDEO if "first_frame_image" in body.files else TXT2VIDEO
    try:
        record = await submit_body(request, spec, principal, body)
    except FieldsInvalid as exc:
        raise _openrouter_fields(exc, parsed) from None
    answer = {"id": record.id, "polling_url": polling_url(services, record.id), "status": "pending",
              "generation_id": record.id}
    return Response(content=msgspec.json.encode(answer), status_code=202, media_type="application/json")


def _expiry(url: str) -> int | None:
    exp = parse_qs(urlsplit(url).query).get("exp")
    return int(exp[0]) if exp and exp[0].isdigit() else None


def to_openrouter(services: Services, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """The engine's status body of a video job as OpenRouter's ``VideoGenerationResponse``."""
    status = STATUS.get(str(body.get("status")), "failed")
    answer: dict[str, Any] = {"id": job_id, "polling_url": polling_url(services, job_id), "status": status,
                              "generation_id": job_id}
    output = body.get("output")
    if status == "completed" and isinstance(output, dict):
        files = [str(url) for url in output.get("files") or []]
        # urls: signed links that need no key; unsigned_urls: the content route (the API key).
        answer["urls"] = files
        answer["unsigned_urls"] = [f"{answer['polling_url']}/content?index={i}" for i in range(len(files))]
        expiries = [e for e in (_expiry(url) for url in files) if e is not None]
        if expiries:
            answer["expires_at"] = min(expiries)
    if status in ("failed", "cancelled"):
        error = body.get("error")
        answer["error"] = str(error.get("message")) if isinstance(error, dict) else f"The job ended {status}"
    return answer


async def _status(
    request: Request[Any, Any, Any], state: State, job_id: str
) -> tuple[JobRecord, dict[str, Any] | None]:
    """The video job and its status body; None once RunPod no longer keeps it (expired)."""
    services: Services = state.services
    principal = principal_of(request)
    await limit_jobs(request, principal)
    record = await load_owned(services, principal, "video", job_id)
    try:
        return record, await current_status(services, state.tracker, state.watcher, record)
    except NotFound as exc:
        if exc.code == "job_expired":
            return record, None
        raise


async def _cost(services: Services, record: JobRecord) -> float | None:
    """What the finished job was charged, in USD, from its settlement in the key's ledger (billing
    on); None when billing is off or the settlement is no longer among the newest entries."""
    if not isinstance(record.options.get("billing"), dict):
        return None
    for entry in reversed(await services.ledger.entries(record.owner, count=_LEDGER_LOOKBACK)):
        if entry.kind == "settle" and entry.job_id == record.id:
            return entry.amount / 1_000_000
    return None


JobId = Annotated[str, Parameter(description="The id POST /api/v1/videos answered.", min_length=1)]


@get(
    f"{PATH}/{{jobId:str}}",
    summary="Poll a video job (OpenRouter)",
    description="`pending`, `in_progress`, `completed` (with `urls`: signed links to the MP4, valid until "
    "`expires_at`), `failed` or `cancelled` (with `error`), `expired`.",
    tags=[TAG_OPENAI],
    middleware=[rate_headers],
    responses=JOB_ERRORS,
)
async def openrouter_video_status(jobId: JobId, request: Request[Any, Any, Any], state: State) -> Response[Any]:
    record, body = await _status(request, state, jobId)
    services: Services = state.services
    answer: dict[str, Any]
    if body is None:
        answer = {"id": jobId, "polling_url": polling_url(services, jobId), "status": "expired",
                  "generation_id": jobId}
    else:
        answer = to_openrouter(services, jobId, body)
        cost = await _cost(services, record) if answer["status"] == "completed" else None
        if cost is not None:
            answer["usage"] = {"cost": cost}
    return Response(content=msgspec.json.encode(answer), media_type="application/json")


async def _file_bytes(services: Services, url: str) -> tuple[str, bytes]:
    """A produced file: from the gateway's own store when the link is one of ours, else fetched."""
    own = f"{services.settings.public_url.rstrip('/')}/v1/files/"
    if url.startswith(own):
        found = await services.files.get(urlsplit(url).path.rsplit("/", 1)[-1])
        if found is None:
            raise NotFound("The video file has expired", code="file_expired")
        return found
    response = await services.client.request("GET", url, "")
    if response.status != 200 or len(response.content) > _MAX_VIDEO_BYTES:
        raise UpstreamError("Could not fetch the video the worker produced", code="upstream_media")
    return response.content_type or "video/mp4", response.content


@get(
    f"{PATH}/{{jobId:str}}/content",
    summary="Download a generated video (OpenRouter)",
    description="The finished video's bytes (`index` picks one of several). 409 `job_not_completed` while "
    "the job runs.",
    tags=[TAG_OPENAI],
    middleware=[rate_headers],
    responses=JOB_ERRORS,
)
async def openrouter_video_content(
    jobId: JobId, request: Request[Any, Any, Any], state: State,
    index: Annotated[int, Parameter(query="index", ge=0, le=64)] = 0,
) -> Response[Any]:
    _, body = await _status(request, state, jobId)
    if body is None:
        raise NotFound(f"Video job {jobId} has expired; its result is no longer kept", code="job_expired")
    if body.get("status") != "COMPLETED":
        raise JobNotReady(f"Video job {jobId} is {STATUS.get(str(body.get('status')), 'failed')}; "
                          "download it once it is completed")
    output = body.get("output")
    files = output.get("files") if isinstance(output, dict) else None
    if not isinstance(files, list) or index >= len(files):
        raise InvalidRequest(f"index must be below {len(files or [])}, the number of videos", param="index")
    content_type, data = await _file_bytes(state.services, str(files[index]))
    return Response(content=data, media_type=content_type,
                    headers={"content-disposition": f'attachment; filename="{jobId}-{index}.mp4"'})


VIDEO_ROUTES: list[Any] = [openrouter_create_video, openrouter_video_status, openrouter_video_content]
