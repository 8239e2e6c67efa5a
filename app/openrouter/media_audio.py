"""OpenRouter's audio routes: ``/api/v1/audio/transcriptions`` and ``/api/v1/audio/speech``.

Transcription is the OpenAI route's own work (``app/openai/transcribe.py`` reads OpenRouter's
JSON ``input_audio`` as well as multipart), served at OpenRouter's path. Speech takes
OpenRouter's body (``input`` as text or turns, raw PCM by default) and runs the OpenAI route's
``speak``: same task, same hold and settlement, the audio's bytes as the answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, post

from app.docs.tags import TAG_OPENAI
from app.errors import InvalidRequest
from app.limits import rate_headers
from app.openai._request import admit, decode_object, validate
from app.openai.speech import SpeechRequest, speak
from app.openai.transcribe import BODY_LIMIT, transcribe
from app.openrouter.media_docs import SUBMIT_ERRORS

TRANSCRIPTIONS_PATH = "/api/v1/audio/transcriptions"
SPEECH_PATH = "/api/v1/audio/speech"


class SpeechTurn(msgspec.Struct):
    text: Annotated[str, msgspec.Meta(min_length=1)]
    voice: str | None = None
    instructions: str | None = None


class OpenRouterSpeechRequest(msgspec.Struct):
    """OpenRouter's ``SpeechRequest``; ``provider``, ``session_id``, ``trace``, ``user`` are unused."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    input: str | Annotated[list[SpeechTurn], msgspec.Meta(min_length=1, max_length=1000)]
    voice: str | None = None
    instructions: str | None = None
    # OpenRouter's default is raw 16-bit PCM; the other formats are the speech surface's.
    response_format: Literal["pcm", "mp3", "wav", "opus", "aac", "flac"] = "pcm"
    speed: float | None = None
    input_references: list[Any] | None = None


def _one_voice(parsed: OpenRouterSpeechRequest) -> tuple[str, str | None, str | None]:
    """(text, voice, instructions): turns read by one voice become one text; several voices
    need a multi-speaker model, which the speech surface does not have."""
    if isinstance(parsed.input, str):
        return parsed.input, parsed.voice, parsed.instructions
    voices = {turn.voice or parsed.voice for turn in parsed.input}
    instructions = {turn.instructions or parsed.instructions for turn in parsed.input}
    if len(voices) > 1 or len(instructions) > 1:
        raise InvalidRequest("input: turns with different voices or instructions (multi-speaker speech) are not "
                             "supported; send one voice", param="input")
    return "\n".join(turn.text for turn in parsed.input), voices.pop(), instructions.pop()


@post(
    TRANSCRIPTIONS_PATH,
    summary="Transcribe audio (OpenRouter)",
    description="OpenRouter's transcription: JSON `input_audio` (`{data: base64, format}` or `{url}`) or a "
    "multipart `file`; `response_format` `json` (default) or `verbose_json`.",
    tags=[TAG_OPENAI],
    status_code=200,
    request_max_body_size=BODY_LIMIT,
    middleware=[rate_headers],
    responses=SUBMIT_ERRORS,
)
async def openrouter_transcription(request: Request[Any, Any, Any]) -> Response[Any]:
    return await transcribe(request, answer_now=True)


@post(
    SPEECH_PATH,
    summary="Generate speech (OpenRouter)",
    description="OpenRouter's text to speech: `input` (text, or turns read by one voice), `voice`, `speed`, "
    "`instructions`, `response_format` (`pcm` by default: 16-bit little-endian samples, or `mp3`, `wav`, ...); "
    "answers the audio's bytes.",
    tags=[TAG_OPENAI],
    status_code=200,
    middleware=[rate_headers],
    responses=SUBMIT_ERRORS,
)
async def openrouter_speech(request: Request[Any, Any, Any]) -> Response[Any]:
    services, principal = await admit(request, "speech")
    raw = await request.body()
    parsed = validate(decode_object(raw), OpenRouterSpeechRequest)
    if parsed.input_references:
        raise InvalidRequest("input_references (voice cloning) is not supported on this route",
                             param="input_references")
    text, voice, instructions = _one_voice(parsed)
    fields = {"input": text, "model": parsed.model, "voice": voice, "instructions": instructions,
              "response_format": parsed.response_format, "speed": parsed.speed}
    speech = validate({k: v for k, v in fields.items() if v is not None}, SpeechRequest)
    return await speak(request, services, principal, speech, raw)


AUDIO_ROUTES: list[Any] = [openrouter_transcription, openrouter_speech]
