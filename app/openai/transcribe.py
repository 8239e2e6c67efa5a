"""POST /v1/audio/transcriptions: multipart upload (the SDK), the seed's JSON ``audioUrl``, or
OpenRouter's JSON ``input_audio`` ({data: base64, format} or {url}).

Audio small enough travels inline as ``audio_base64``; a larger upload is staged in Redis
and handed to the worker as a signed gateway URL, because RunPod caps job payloads. Base64
audio is bounded, decoded and sniffed here, then goes the multipart upload's way.
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
from app.errors import InvalidRequest, PayloadTooLarge, echo
from app.files import decode_data_uri
from app.jobs.runner import Call, run_sync
from app.limits import rate_headers
from app.multipart import read_form
from app.netguard import check_url
from app.openai._request import admit, choose_mode, decode_object, validate, wants_async
from app.openai.bounds import check_values, finite_number
from app.openai.enqueue import enqueue
from app.openai.handler_fields import TRANSCRIBE_FIELDS, handler_input
from app.openai.transcript_formats import render
from app.openai.webhook_field import checked_webhook_url, job_webhook_url
from app.services import Services
from app.tasks.media_sniff import sniff
from app.tasks.spec import AUDIO_FORMATS
from app.tasks.transcribe import MAX_FILE_S
from app.tasks.uploads import CONTENT_TYPES
from app.usage import audio_counts, record

MAX_UPLOAD_BYTES = 80 * 1024 * 1024
# Room for the multipart envelope and fields, or for JSON base64 (4/3 of the file) and its fields.
BODY_LIMIT = MAX_UPLOAD_BYTES * 4 // 3 + 1024 * 1024
# Other names clients give the formats sniffing tells apart.
_FORMAT_ALIASES = {"mpeg": "mp3", "mpga": "mp3", "opus": "ogg", "oga": "ogg", "mp4": "m4a", "x-wav": "wav"}


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
    if "input_audio" in body:  # OpenRouter's body; checked before the walk below reads it
        audio = await _input_audio(services, body.pop("input_audio"))
        check_values(body)
        return body, audio, hashlib.sha256(raw).hexdigest()
    check_values(body)  # pass_through fields reach the worker as sent
    url = body.get("audioUrl") or body.get("audio_url")
    if not isinstance(url, str) or not url:
        raise InvalidRequest("audioUrl is required (or upload a file as multipart/form-data)", param="audioUrl")
    await check_url(url, param="audioUrl", allowlist=services.settings.media_allowlist, require_https=False)
    body.pop("audio_url", None)
    return body, _Audio(url=url), hashlib.sha256(raw).hexdigest()


async def _input_audio(services: Services, value: Any) -> _Audio:
    """OpenRouter's ``input_audio``: a URL the worker fetches, or base64 bytes whose sniffed
    format must be an audio format and agree with the ``format`` the client named."""
    if not isinstance(value, dict):
        raise InvalidRequest("input_audio must be an object: {data: base64, format} or {url}", param="input_audio")
    url = value.get("url")
    if "data" not in value and isinstance(url, str) and url:
        await check_url(url, param="input_audio.url", allowlist=services.settings.media_allowlist,
                        require_https=False)
        return _Audio(url=url)
    data, named = value.get("data"), value.get("format")
    if not isinstance(data, str) or not data:
        raise InvalidRequest("input_audio.data is required: the audio file as base64", param="input_audio.data")
    allowed = ", ".join(sorted(AUDIO_FORMATS))
    claimed = _FORMAT_ALIASES.get(named.lower(), named.lower()) if isinstance(named, str) else None
    if claimed not in AUDIO_FORMATS:
        raise InvalidRequest(f"input_audio.format must be one of: {allowed}", param="input_audio.format")
    # Refuse by the encoded length before decoding: base64 is 4/3 of the bytes.
    _check_size(services, len(data) * 3 // 4 - 2, param="input_audio.data")
    decoded = decode_data_uri(data) if data.startswith("data:") else None
    try:
        audio = decoded[1] if decoded is not None else base64.b64decode(data, validate=True)
    except ValueError:
        raise InvalidRequest("input_audio.data is not valid base64", param="input_audio.data") from None
    _check_size(services, len(audio), param="input_audio.data")
    kind = sniff(audio[:64])
    kind = "m4a" if kind == "mp4" else kind  # audio-only MP4 carries the generic brand
    if kind not in AUDIO_FORMATS:
        raise InvalidRequest(f"input_audio.data is not audio in a supported format ({allowed})",
                             param="input_audio.data")
    if kind != claimed:
        raise InvalidRequest(f"input_audio.format is {echo(named)} but the data is {kind} audio",
                             param="input_audio.format")
    return _Audio(data=audio, content_type=CONTENT_TYPES[kind])


def _check_size(services: Services, size: int, *, param: str = "file") -> None:
    limit = services.settings.max_audio_bytes
    if size > limit:
        raise PayloadTooLarge(f"Audio files may be at most {limit / (1024 * 1024):g} MB", param=param)


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
    description="OpenAI transcriptions from a multipart upload (up to 80 MB), the seed's JSON `audioUrl` or "
    "OpenRouter's JSON `input_audio` (`{data: base64, format}` or `{url}`). "
    + docs.ASYNC_NOTE,
    tags=["openai"],
    status_code=200,
    request_max_body_size=BODY_LIMIT,
    middleware=[rate_headers],
    operation_class=docs.TRANSCRIBE_OPERATION,
    responses=docs.TRANSCRIBE_RESPONSES,
)
async def create_transcription(request: Request[Any, Any, Any]) -> Response[Any]:
    return await transcribe(request)


async def transcribe(request: Request[Any, Any, Any], *, answer_now: bool = False) -> Response[Any]:
    """The transcription route's work, shared with OpenRouter's path (``app/openrouter``).
    ``answer_now``: a surface in async mode still answers the transcript (OpenRouter has no
    async transcription); ``Prefer: respond-async`` or a webhook still queue."""
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
    if answer_now and not (webhook_url or wants_async(request)):
        mode = "sync"
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
