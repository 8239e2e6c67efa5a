"""Response specs with the bodies the gateway really sends: the seed's enqueue and job status
bodies, and OpenAI's error body."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example

from app.errors import ErrorBody
from app.jobs.schemas import EnqueueBody

JOB_ID = "f3de27f8-61d5-4d58-aad1-a7d63f8a6e0f"
ENDPOINT_ID = "o6r4i5q9j8k7l6"


# The enqueue body is documented with the very Struct the gateway answers with.
EnqueueDoc = EnqueueBody


class JobStatusDoc(msgspec.Struct):
    """A job's status body: RunPod's, without its ``input`` echo; ``output`` once COMPLETED."""

    id: str
    status: str
    delayTime: float = 0
    executionTime: float = 0
    progress: Any | None = None
    output: Any | None = None
    error: dict[str, Any] | None = None


def enqueue_example(obj: str, surface: str, model: str) -> dict[str, Any]:
    return {
        "id": JOB_ID,
        "object": obj,
        "created": 1773504000,
        "status": "queued",
        "surface": surface,
        "model": model,
        "endpoint_id": ENDPOINT_ID,
        "runpod": {"id": JOB_ID, "status": "IN_QUEUE"},
    }


def error_example(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


JOB_STATUS_EXAMPLE = {"id": JOB_ID, "status": "IN_PROGRESS", "delayTime": 0, "executionTime": 4.61}
JOB_COMPLETED_EXAMPLE = {
    "id": JOB_ID,
    "status": "COMPLETED",
    "delayTime": 120,
    "executionTime": 5230,
    "output": {"object": "chat.completion", "model": "Llama3_8B_Instruct", "choices": ["…"]},
}


def _spec(
    container: Any, description: str, *examples: tuple[str, Any], media: str = "application/json"
) -> ResponseSpec:
    return ResponseSpec(
        data_container=container,
        description=description,
        media_type=media,
        generate_examples=False,
        examples=[Example(summary=summary, value=value) for summary, value in examples] or None,
    )


def _error(description: str, *examples: tuple[str, dict[str, Any]]) -> ResponseSpec:
    return _spec(ErrorBody, description, *examples)


BAD_REQUEST = _error(
    "Invalid request (OpenAI's error body; `x-should-retry: false`)",
    (
        "validation",
        error_example("Expected `array`, got `str` (messages)", "invalid_request_error", "invalid_value", "messages"),
    ),
)
UNAUTHORIZED = _error(
    "Missing or wrong API key",
    ("no key", error_example("Incorrect API key provided", "authentication_error", "invalid_api_key")),
)
NOT_FOUND_JOB = _error(
    "Unknown job, or another key's job (the same answer, so existence is not leaked)",
    ("unknown job", error_example(f"Job {JOB_ID} not found", "invalid_request_error", "not_found")),
)
RATE_LIMITED = _error(
    "Over the key's rate limit; `Retry-After` says when to retry",
    ("rpm", error_example("Rate limit reached for requests per minute", "rate_limit_error", "rate_limit_exceeded")),
)
UNAVAILABLE = _error(
    "No endpoint configured for the surface, or the gateway cannot serve now (`Retry-After`)",
    ("seed", error_example("No RunPod endpoint configured for surface chat", "server_error", "missing_endpoint_id")),
)
UPSTREAM = _error(
    "The worker or RunPod failed; the message is the upstream's",
    ("worker", error_example("The worker failed: CUDA out of memory", "server_error", "upstream_error")),
)
TIMEOUT = _error(
    "The job did not finish within the surface's `sync_timeout_s`; the job id is in `x-dryapi-job-id`",
    (
        "sync timeout",
        error_example(
            f"Job {JOB_ID} did not finish within 120s; follow it at /v1/jobs/chat/{JOB_ID}",
            "server_error",
            "job_timeout",
        ),
    ),
)
ERRORS: dict[int, ResponseSpec] = {
    400: BAD_REQUEST,
    401: UNAUTHORIZED,
    429: RATE_LIMITED,
    502: UPSTREAM,
    503: UNAVAILABLE,
    504: TIMEOUT,
}


def inference_responses(
    surface: str,
    obj: str,
    model: str,
    ok: Any,
    *,
    ok_media: str = "application/json",
    ok_description: str = "The finished OpenAI object",
) -> dict[int, ResponseSpec]:
    """200 (the OpenAI object), 202 (the seed's enqueue body), and the errors of a POST route."""
    return {
        200: _spec(dict[str, Any], ok_description, ("finished", ok), media=ok_media),
        202: _spec(
            EnqueueDoc,
            "Queued: `Prefer: respond-async`, a `webhook_url`, or a surface in async mode. "
            f"`Location: /v1/jobs/{surface}/{{id}}`",
            ("queued", enqueue_example(obj, surface, model)),
        ),
        404: _error(
            "Unknown model",
            (
                "model",
                error_example(
                    f"The model 'x' does not exist or is not served on {surface}",
                    "invalid_request_error",
                    "model_not_found",
                    "model",
                ),
            ),
        ),
        **ERRORS,
    }


JOB_RESPONSES: dict[int, ResponseSpec] = {
    400: BAD_REQUEST,
    200: _spec(
        JobStatusDoc, "The job's status body", ("in progress", JOB_STATUS_EXAMPLE), ("completed", JOB_COMPLETED_EXAMPLE)
    ),
    401: UNAUTHORIZED,
    404: NOT_FOUND_JOB,
    429: RATE_LIMITED,
    502: UPSTREAM,
}


CHAT_RESPONSES = inference_responses(
    "chat",
    "chat.completion.enqueue",
    "Llama3_8B_Instruct",
    {
        "id": "chatcmpl-8f2a",
        "object": "chat.completion",
        "created": 1773504000,
        "model": "Llama3_8B_Instruct",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "…"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 48, "total_tokens": 60},
    },
    ok_description="A chat.completion; with `stream: true` a text/event-stream of chat.completion.chunk events, "
    'ending with `data: [DONE]` (or a final `data: {"error": …}` frame)',
)
EMBEDDINGS_RESPONSES = inference_responses(
    "embeddings",
    "embedding.enqueue",
    "Bge_M3_INT8",
    {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.0123, -0.0456, 0.0789]}],
        "model": "Bge_M3_INT8",
        "usage": {"prompt_tokens": 9, "total_tokens": 9},
    },
)
IMAGES_RESPONSES = inference_responses(
    "images",
    "image.generation.enqueue",
    "Flux1schnell",
    {"created": 1773504000, "data": [{"url": "https://gateway.example/v1/files/4c1e…?exp=1773507600&sig=…"}]},
)
TRANSCRIBE_RESPONSES = inference_responses(
    "transcribe",
    "audio.transcription.enqueue",
    "WhisperLargeV3",
    {"text": "Hello, thanks for calling. How can I help you today?"},
    ok_description="The transcript in `response_format` (json, text, srt, verbose_json or vtt)",
)

FORBIDDEN = _error(
    "The key may not do this (admin-only route or parameter)",
    ("not admin", error_example("This route requires an admin key", "permission_error", "permission_denied")),
)
MODEL_RESPONSES: dict[int, ResponseSpec] = {400: BAD_REQUEST, 401: UNAUTHORIZED}
DOWNLOAD_RESPONSES: dict[int, ResponseSpec] = {
    400: BAD_REQUEST,
    401: UNAUTHORIZED,
    404: NOT_FOUND_JOB,
    429: RATE_LIMITED,
}
RESULT_RESPONSES: dict[int, ResponseSpec] = {200: JOB_RESPONSES[200], 400: BAD_REQUEST, 404: NOT_FOUND_JOB}
FILE_RESPONSES: dict[int, ResponseSpec] = {
    400: BAD_REQUEST,
    404: _error(
        "Invalid, expired or unknown link",
        ("expired", error_example("This file has expired", "invalid_request_error", "file_expired")),
    ),
}
PROXY_RESPONSES: dict[int, ResponseSpec] = {
    400: BAD_REQUEST,
    401: UNAUTHORIZED,
    403: FORBIDDEN,
    502: _error(
        "RunPod failed (HTTP 5xx) or could not be reached; its 2xx and 4xx answers pass through verbatim",
        ("runpod 5xx", error_example("RunPod answered HTTP 502: bad gateway", "server_error", "upstream_error")),
    ),
}
WEBSOCKET_RESPONSES: dict[int, ResponseSpec] = {
    101: ResponseSpec(data_container=None, description="Switching protocols: the job's status frames follow"),
    400: BAD_REQUEST,
    426: _error(
        "A plain HTTP request: this route needs `Upgrade: websocket`",
        ("no upgrade", error_example("This route is a WebSocket", "invalid_request_error", "upgrade_required")),
    ),
}
_INVALID_WEBHOOK_URL = _error(
    "Invalid request; `invalid_webhook_url` when the URL is not https or resolves to a private address",
    (
        "private destination",
        error_example(
            "webhook_url resolves to a private or reserved address, which is not allowed",
            "invalid_request_error",
            "invalid_webhook_url",
            "webhook_url",
        ),
    ),
)
WEBHOOK_SETTINGS_RESPONSES: dict[int, ResponseSpec] = {400: _INVALID_WEBHOOK_URL, 401: UNAUTHORIZED}
WEBHOOK_TEST_RESPONSES: dict[int, ResponseSpec] = {400: _INVALID_WEBHOOK_URL, 401: UNAUTHORIZED}
USAGE_RESPONSES: dict[int, ResponseSpec] = {
    200: _spec(dict[str, Any], "The key's usage: per day and surface, and totals"),
    400: BAD_REQUEST,
    401: UNAUTHORIZED,
    403: FORBIDDEN,
}
