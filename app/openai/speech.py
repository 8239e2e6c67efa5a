"""POST /v1/audio/speech: OpenAI's text to speech over the speech surface's ``txt2audio`` task.

The audio comes back as the bytes of the file, with its content type, as the openai SDK
expects. ``response_format`` is passed to the worker (mp3, wav, opus, flac, aac, pcm); a format
the worker cannot write comes back as its 400 naming the field.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, post

from app import docs
from app.auth import Principal
from app.billing import charge
from app.errors import UpstreamError
from app.files import decode_data_uri
from app.jobs.outcome import unwrap
from app.jobs.runner import Call, run_sync
from app.limits import rate_headers
from app.openai._request import admit, decode_object, validate, wants_async
from app.openai.enqueue import enqueue
from app.openai.tasks import task_input
from app.openai.webhook_field import checked_webhook_url, job_webhook_url
from app.services import Services
from app.tasks.speech import TXT2AUDIO, Txt2Audio

CONTENT_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
                 "wav": "audio/wav", "pcm": "audio/pcm"}
_FIELDS = {"input": "text", "instructions": "instruct", "response_format": "format"}
_MAX_AUDIO_BYTES = 100 * 1024 * 1024


class SpeechRequest(msgspec.Struct):
    input: Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]
    model: str | None = None
    voice: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    instructions: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = None
    speed: Annotated[float, msgspec.Meta(ge=0.25, le=4.0)] | None = None
    webhook_url: str | None = None


async def _audio_bytes(services: Services, output: Any) -> tuple[bytes, str | None]:
    body = unwrap(output)
    files = body.get("files") if isinstance(body, dict) else None
    item = files[0] if isinstance(files, list) and files and isinstance(files[0], dict) else None
    if item is None:
        raise UpstreamError("The worker returned no audio", code="upstream_bad_response")
    content_type = item.get("content_type") if isinstance(item.get("content_type"), str) else None
    if isinstance(item.get("url"), str):
        response = await services.client.request("GET", item["url"], "")
        if response.status != 200 or len(response.content) > _MAX_AUDIO_BYTES:
            raise UpstreamError("Could not fetch the audio the worker produced", code="upstream_media")
        return response.content, content_type
    data = item.get("data")
    decoded = decode_data_uri(data) if isinstance(data, str) else None
    if decoded is not None:
        return decoded[1], decoded[0]
    try:
        return base64.b64decode(str(data), validate=True), content_type
    except ValueError:
        raise UpstreamError("The worker's audio is not base64", code="upstream_bad_response") from None


@post(
    "/v1/audio/speech",
    summary="Generate speech",
    description="OpenAI text to speech; answers the audio file's bytes (`response_format`: mp3 by default). "
    "Runs the speech surface's `txt2audio` task with a preset `voice` (the model's voices are listed by "
    "`GET /api/v1/client/models`). " + docs.ASYNC_NOTE,
    tags=["openai"],
    status_code=200,
    middleware=[rate_headers],
)
async def create_speech(request: Request[Any, Any, Any]) -> Response[Any]:
    services, principal = await admit(request, "speech")
    raw = await request.body()
    return await speak(request, services, principal, validate(decode_object(raw), SpeechRequest), raw)


async def speak(
    request: Request[Any, Any, Any], services: Services, principal: Principal, parsed: SpeechRequest, raw: bytes
) -> Response[Any]:
    """The speech route's work once the body is read, shared with OpenRouter's path (``app/openrouter``)."""
    route = services.resolve("speech", parsed.model)
    response_format = parsed.response_format or "mp3"
    params = Txt2Audio(model=route.public_model, text=parsed.input, voice=parsed.voice, speed=parsed.speed,
                       format=response_format, instruct=parsed.instructions)
    job_input = task_input(services, TXT2AUDIO, params, route, {})
    call = Call(services, request, principal, route)
    webhook_url = await checked_webhook_url(services, parsed.webhook_url)
    quantities = {"characters": float(len(parsed.input)), "speed": parsed.speed or 1.0}
    billing = await charge.hold_for(services, principal, route, quantities, task=TXT2AUDIO.name)
    billed: dict[str, Any] = {"billing": billing} if billing is not None else {}
    # Sync unless asked otherwise, whatever the surface's mode: the SDK waits for the bytes.
    if webhook_url or wants_async(request):
        # The finished job is kept as a link to its audio file (the native rendering).
        options = {"dialect": "native", "task": TXT2AUDIO.name} | billed
        hook = await job_webhook_url(services, principal, webhook_url)
        return await charge.paid_enqueue(services, principal.key_id, billing, enqueue(
            call, job_input, webhook_url=hook, digest=hashlib.sha256(raw).hexdigest(), options=options))
    output = await charge.paid(services, principal.key_id, billing, run_sync(call, job_input, billed, _FIELDS))
    await charge.settle_output(services, principal.key_id, route, billing, output)
    audio, content_type = await _audio_bytes(services, output)
    return Response(content=audio, media_type=content_type or CONTENT_TYPES[response_format])
