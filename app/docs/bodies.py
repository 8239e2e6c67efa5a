"""Request bodies of the routes that read their body themselves (they take ``Request``, not ``data``).

``body_operation`` returns an OpenAPI Operation class for ``operation_class=`` on the decorator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi.spec import Example, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema


def _object(required: dict[str, Schema], optional: dict[str, Schema]) -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        required=list(required) or None,
        properties={**required, **optional},
        additional_properties=True,
    )


def _s(type_: OpenAPIType, description: str, **extra: Any) -> Schema:
    return Schema(type=type_, description=description, **extra)


_STR, _NUM, _INT, _BOOL, _ARR = (
    OpenAPIType.STRING,
    OpenAPIType.NUMBER,
    OpenAPIType.INTEGER,
    OpenAPIType.BOOLEAN,
    OpenAPIType.ARRAY,
)
_MODEL = _s(_STR, "Public model slug or alias (GET /v1/models); the surface's default when omitted")
_WEBHOOK = _s(_STR, "HTTPS URL for signed job webhooks; makes the request async (202)", format="uri")
_EXTRA = "Unknown fields travel to the worker unchanged."


def body_operation(media: str, schema: Schema, example: dict[str, Any], description: str) -> type[Operation]:
    """An Operation class documenting a body the handler reads itself (it takes ``Request``)."""
    body = RequestBody(
        content={media: OpenAPIMediaType(schema=schema, examples={"seed": Example(summary="seed", value=example)})},
        description=description,
        required=True,
    )

    @dataclass
    class _WithBody(Operation):
        def __post_init__(self) -> None:
            if self.request_body is None:
                self.request_body = body

    return _WithBody


CHAT_OPERATION = body_operation(
    "application/json",
    _object(
        {
            "messages": _s(
                _ARR, "Conversation in OpenAI chat format", min_items=1, items=Schema(type=OpenAPIType.OBJECT)
            )
        },
        {
            "model": _MODEL,
            "stream": _s(_BOOL, "Server-Sent Events, ending with `data: [DONE]`"),
            "temperature": _s(_NUM, "Sampling temperature", minimum=0, maximum=2),
            "max_tokens": _s(_INT, "Maximum output tokens", minimum=1),
            "webhook_url": _WEBHOOK,
        },
    ),
    {"model": "Llama3_8B_Instruct", "messages": [{"role": "user", "content": "Summarize this document in 5 bullets."}]},
    f"OpenAI's chat completion request. {_EXTRA}",
)
EMBEDDINGS_OPERATION = body_operation(
    "application/json",
    _object(
        {"input": Schema(one_of=[_s(_STR, "One text"), _s(_ARR, "Texts", items=Schema(type=_STR))])},
        {
            "model": _MODEL,
            "encoding_format": _s(_STR, "float or base64", enum=["float", "base64"]),
            "dimensions": _s(_INT, "Output dimensions, where the model supports it", minimum=1),
            "webhook_url": _WEBHOOK,
        },
    ),
    {"model": "Bge_M3_INT8", "input": "How to optimize cold starts for serverless GPUs"},
    f"OpenAI's embeddings request. {_EXTRA}",
)
IMAGES_OPERATION = body_operation(
    "application/json",
    _object(
        {"prompt": _s(_STR, "What to draw", min_length=1)},
        {
            "model": _MODEL,
            "n": _s(_INT, "Number of images", minimum=1, maximum=8),
            "size": _s(_STR, "WIDTHxHEIGHT"),
            "response_format": _s(_STR, "url or b64_json", enum=["url", "b64_json"]),
            "negative_prompt": _s(_STR, "What to avoid"),
            "seed": _s(_INT, "Seed", minimum=0),
            "steps": _s(_INT, "Inference steps", minimum=1, maximum=200),
            "webhook_url": _WEBHOOK,
        },
    ),
    {"model": "Flux1schnell", "prompt": "A moody cyberpunk alley at night with rain reflections, 35mm film look"},
    "OpenAI's image generation request (plus the seed's negative_prompt, seed and steps).",
)
TRANSCRIBE_OPERATION = body_operation(
    "multipart/form-data",
    _object(
        {"file": _s(_STR, "The audio (up to 80 MB)", format="binary")},
        {
            "model": _MODEL,
            "language": _s(_STR, "BCP-47 hint, e.g. en"),
            "prompt": _s(_STR, "Bias the transcript"),
            "response_format": _s(
                _STR, "json, text, srt, verbose_json or vtt", enum=["json", "text", "srt", "verbose_json", "vtt"]
            ),
            "webhook_url": _WEBHOOK,
        },
    ),
    {"model": "WhisperLargeV3", "file": "(binary)", "response_format": "json"},
    "OpenAI's multipart upload; or JSON with the seed's `audioUrl` "
    '(`{"audioUrl": "https://cdn.example.com/audio/customer-call-2026-03-15.mp3"}`).',
)

_EVENTS = ["job.processing", "job.completed", "job.failed"]
_HOOK_URL = _s(_STR, "HTTPS URL with a public address (checked against private networks)", format="uri")
WEBHOOK_TEST_OPERATION = body_operation(
    "application/json",
    Schema(
        type=OpenAPIType.OBJECT,
        required=["webhook_url"],
        properties={
            "webhook_url": _HOOK_URL,
            "event": _s(_STR, "The event to send (default job.completed)", enum=_EVENTS),
            "data": _s(OpenAPIType.OBJECT, "Fields merged into the payload's `data` (at most 16 KiB)"),
        },
        additional_properties=False,
    ),
    {"webhook_url": "https://example.com/hooks/dryapi", "event": "job.completed"},
    "Where and what to send; the delivery is signed with the key's webhook secret.",
)
WEBHOOK_SETTINGS_OPERATION = body_operation(
    "application/json",
    Schema(
        type=OpenAPIType.OBJECT,
        required=["webhook_url"],
        properties={"webhook_url": Schema(one_of=[_HOOK_URL, Schema(type=OpenAPIType.NULL)])},
        additional_properties=False,
    ),
    {"webhook_url": "https://example.com/hooks/dryapi"},
    "The account-level webhook URL, or null to clear it.",
)


ASYNC_NOTE = (
    "Runs sync by default; `Prefer: respond-async` or a `webhook_url` answers 202 with the seed's enqueue body "
    "and `Location: /v1/jobs/{surface}/{id}` (poll it, or watch `/v1/jobs/{surface}/{id}/ws`)."
)
