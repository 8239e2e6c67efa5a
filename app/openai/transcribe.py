"""POST /v1/audio/transcriptions: multipart upload (the SDK) or the seed's JSON ``audioUrl``.

Audio small enough travels inline as ``audio_base64``; a larger upload is staged in Redis
and handed to the worker as a signed gateway URL, because RunPod caps job payloads.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import UploadFile

from app import docs
from app.billing import charge
from app.errors import InvalidRequest, PayloadTooLarge
from app.jobs.runner import Call, enqueue, run_sync
from app.limits import rate_headers
from app.multipart import read_form
from app.netguard import check_url
from app.openai._request import admit, choose_mode, decode_object, validate
from app.openai.bounds import check_values, finite_number
from app.openai.handler_fields import TRANSCRIBE_FIELDS, handler_input
from app.openai.transcript_formats import render
from app.openai.webhook_field import checked_webhook_url, job_webhook_url
from app.services import Services
from app.tasks.transcribe import MAX_FILE_S
from app.usage import audio_counts, record

MAX_UPLOAD_BYTES = 80 * 1024 * 1024
_BODY_LIMIT = MAX_UPLOAD_BYTES + 1024 * 1024  # room for the multipart envelope and fields


class TranscriptionRequest(msgspec.Struct):
    model: str | None = None
    language: str | None = None
    prompt: str | None = None
    response_format: Literal["json", "text", "srt", "verbose_json", "vtt"] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    timestamp_granularities: Annotated[list[Literal["word", "segment"]], msgspec.Meta(max_length=2)] | None = None
    webhook_url: str | None = None
    audioUrl: str | None = None


class _Audio(msgspec.Struct):
    data: bytes | None = None
    content_type: str = "application/octet-stream"
    url: str | None = None


async def _from_multipart(request: Request[Any, Any, Any]) -> tuple[dict[str, Any], _Audio, str]:
    form = await read_form(request)
    body: dict[str, Any] = {}
    audio: _Audio | None = None
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key == "file":
                if audio is not None:  # which one was meant? never guess
                    raise InvalidRequest("Send exactly one 'file' part", param="file", code="duplicate_field")
                data = await value.read()
                audio = _Audio(data=data, content_type=value.content_type or "application/octet-stream")
            continue
        name = key.removesuffix("[]")
        if name == "timestamp_granularities":
            body.setdefault(name, []).append(value)
        elif name in body:
            raise InvalidRequest(f"{name} was sent more than once", param=name, code="duplicate_field")
        else:
            body[name] = value
    if audio is None or not audio.data:
        raise InvalidRequest("file is required: upload the audio as multipart field 'file'", param="file")
    if "temperature" in body:
        body["temperature"] = finite_number(body["temperature"], "temperature")
    check_values(body)  # field and list counts (pass_through fields reach the worker)
    digest = hashlib.sha256(audio.data).hexdigest() + hashlib.sha256(msgspec.json.encode(body)).hexdigest()
    return body, audio, digest


async def _from_json(request: Request[Any, Any, Any], services: Services) -> tuple[dict[str, Any], _Audio, str]:
    raw = await request.body()
    body = decode_object(raw)
    check_values(body)  # pass_through fields reach the worker as sent
    url = body.get("audioUrl") or body.get("audio_url")
    if not isinstance(url, str) or not url:
        raise InvalidRequest("audioUrl is required (or upload a file as multipart/form-data)", param="audioUrl")
    await check_url(url, param="audioUrl", allowlist=services.settings.media_allowlist, require_https=False)
    body.pop("audio_url", None)
    return body, _Audio(url=url), hashlib.sha256(raw).hexdigest()


def _check_size(services: Services, size: int) -> None:
    limit = services.settings.max_audio_bytes
    if size > limit:
        raise PayloadTooLarge(f"Audio files may be at most {limit / (1024 * 1024):g} MB", param="file")


async def _audio_field(services: Services, audio: _Audio) -> dict[str, str]:
    if audio.url is not None:
        return {"audio": audio.url}
    assert audio.data is not None
    _check_size(services, len(audio.data))
    if len(audio.data) <= services.settings.inline_audio_max_bytes:
        return {"audio_base64": base64.b64encode(audio.data).decode("ascii")}
    if not services.files.enabled:
        raise PayloadTooLarge(
            "This upload is too large to send inline and file staging is off (DRYAPI_FILE_TTL_S=0)", param="file"
        )
    return {"audio": await services.files.put(audio.data, audio.content_type)}


@post(
    "/v1/audio/transcriptions",
    summary="Transcribe audio",
    description="OpenAI transcriptions from a multipart upload (up to 80 MB) or the seed's JSON `audioUrl`. "
    + docs.ASYNC_NOTE,
    tags=["openai"],
    status_code=200,
    request_max_body_size=_BODY_LIMIT,
    middleware=[rate_headers],
    operation_class=docs.TRANSCRIBE_OPERATION,
    responses=docs.TRANSCRIBE_RESPONSES,
)
async def create_transcription(request: Request[Any, Any, Any]) -> Response[Any]:
    services, principal = await admit(request, "transcribe")
    if request.content_type[0] == "multipart/form-data":
        declared = request.headers.get("content-length", "")
        if declared.isdigit():
            # Refuse before reading: the multipart envelope adds well under 64 KiB.
            _check_size(services, max(0, int(declared) - 65536))
        body, audio, digest = await _from_multipart(request)
    else:
        body, audio, digest = await _from_json(request, services)
    parsed = validate(body, TranscriptionRequest)
    route = services.resolve("transcribe", parsed.model)
    words = "word" in (parsed.timestamp_granularities or [])
    response_format = parsed.response_format or "json"
    job_input = handler_input(TRANSCRIBE_FIELDS, body, route)
    if words:
        job_input["word_timestamps"] = True
    webhook_url = await checked_webhook_url(services, parsed.webhook_url)
    mode = choose_mode(request, route, stream=False, webhook_url=webhook_url)
    job_input.update(await _audio_field(services, audio))
    options: dict[str, Any] = {"response_format": response_format, "words": words}
    call = Call(services, request, principal, route)
    # Held for the longest media a job may take (its length is known once the worker has it),
    # settled on the duration the worker reports.
    billing = await charge.hold_for(services, principal, route, {"media_seconds": MAX_FILE_S}, task="transcribe")
    if billing is not None:
        options["billing"] = billing
    if mode == "async":
        hook = await job_webhook_url(services, principal, webhook_url)
        return await charge.paid_enqueue(services, principal.key_id, billing,
                                         enqueue(call, job_input, webhook_url=hook, digest=digest, options=options))
    running = run_sync(call, job_input, options, TRANSCRIBE_FIELDS)
    output = await charge.paid(services, principal.key_id, billing, running)
    await charge.settle_output(services, principal.key_id, route, billing, output)
    content, media_type = render(output, response_format, words=words)
    record(services, principal.key_id, "transcribe", audio_counts(output))
    if isinstance(content, str):
        return Response(content=content.encode(), media_type=media_type)
    return Response(content=msgspec.json.encode(content), media_type=media_type)
