"""OpenAPI response specs for the OpenRouter-only routes: its error body, as app/errors.py sends it."""

from __future__ import annotations

import msgspec
from litestar.openapi import ResponseSpec


class OpenRouterErrorMetadata(msgspec.Struct):
    code: str | None  # the gateway's string code (model_not_found, invalid_value, ...)
    type: str
    param: str | None
    error_type: str  # OpenRouter's canonical error type


class OpenRouterErrorDetail(msgspec.Struct):
    code: int  # the HTTP status
    message: str
    metadata: OpenRouterErrorMetadata
    type: str
    param: str | None


class OpenRouterErrorBody(msgspec.Struct):
    error: OpenRouterErrorDetail


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=OpenRouterErrorBody, description=description, generate_examples=False)


RESPONSES: dict[int, ResponseSpec] = {
    400: _error("Invalid request: `metadata.param` names the field (OpenRouter's error body)"),
    401: _error("Missing or wrong API key"),
    404: _error("Unknown model or generation"),
}
