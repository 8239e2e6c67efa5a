"""The embeddings job input: both dialects, and the checks that need no model.

A job's ``input`` is either worker-infinity's OpenAI envelope
``{"openai_route": "/v1/embeddings", "openai_input": {...}}`` or its native body
``{"model", "input", ...}``. Either way the body is OpenAI's embeddings request. Errors name
the field as the client wrote it (``input``, ``input.3``, ``dimensions``), because the
gateway turns them into a 400 for that client. Messages never quote the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from handlers.common.errors import InvalidInput
from handlers.common.validation import parse_input

MAX_ITEMS = 2048  # OpenAI's limit on inputs per request
EMBEDDINGS_ROUTES = frozenset({"/v1/embeddings", "/openai/v1/embeddings", "/embeddings"})
MODELS_ROUTES = frozenset({"/v1/models", "/openai/v1/models", "/models"})
EncodingFormat = Literal["float", "base64"]


class EmbeddingsBody(msgspec.Struct):
    """OpenAI's embeddings body. Unknown keys (the SDK's ``extra_body``) are ignored."""

    # msgspec allows one list type per union, so list items are classified by hand.
    input: str | list[Any]
    model: str | None = None
    encoding_format: str | None = None
    dimensions: int | None = None
    user: str | None = None


@dataclass(frozen=True)
class Inputs:
    """The request's inputs in order: a text, or a token array still to be decoded."""

    items: list[str | list[int]]
    params: list[str]  # the field each item came from, for error messages


def route_of(raw: Any) -> str:
    """``"embeddings"`` or ``"models"``: what the job asks for."""
    if not isinstance(raw, dict):
        raise InvalidInput("input", "input must be a JSON object")
    route = raw.get("openai_route")
    if route is None:
        return "embeddings"
    if route in EMBEDDINGS_ROUTES:
        return "embeddings"
    if route in MODELS_ROUTES:
        return "models"
    raise InvalidInput(
        "openai_route",
        "openai_route must be /v1/embeddings or /v1/models for this worker",
        code="unsupported_route",
    )


def parse_body(raw: dict[str, Any]) -> EmbeddingsBody:
    """The OpenAI body of an embeddings job, from either dialect."""
    if "openai_route" in raw:
        body = raw.get("openai_input")
        if not isinstance(body, dict):
            raise InvalidInput("openai_input", "openai_input must be a JSON object (the OpenAI request body)")
        raw = body
    return parse_input(raw, EmbeddingsBody)


def encoding_format(value: str | None) -> EncodingFormat:
    if value is None or value == "float":
        return "float"
    if value == "base64":
        return "base64"
    raise InvalidInput("encoding_format", "encoding_format must be 'float' or 'base64'")


def check_dimensions(value: int | None) -> None:
    """The lower bound; the upper bound is the model's dimension (checked once it is loaded)."""
    if value is not None and value < 1:
        raise InvalidInput("dimensions", "dimensions must be at least 1")


def collect_inputs(value: str | list[Any]) -> Inputs:
    """Classify ``input`` (str | list[str] | list[int] | list[list[int]]) into items."""
    if isinstance(value, str):
        _check_text(value, "input")
        return Inputs([value], ["input"])
    if not value:
        raise InvalidInput("input", "input must not be an empty list")
    if _is_token(value[0]):
        # A flat list of integers is one token array, not many inputs.
        return Inputs([_token_array(value, "input")], ["input"])
    if len(value) > MAX_ITEMS:
        raise InvalidInput("input", f"input may contain at most {MAX_ITEMS} items; it has {len(value)}")
    items: list[str | list[int]] = []
    params = [f"input.{index}" for index in range(len(value))]
    first_is_text = isinstance(value[0], str)
    for item, param in zip(value, params, strict=True):
        if first_is_text and isinstance(item, str):
            _check_text(item, param)
            items.append(item)
        elif not first_is_text and isinstance(item, list):
            items.append(_token_array(item, param))
        else:
            raise InvalidInput(
                param, "input must be a string, a list of strings, a token array or a list of token arrays"
            )
    return Inputs(items, params)


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_text(value: str, param: str) -> None:
    if not value:
        raise InvalidInput(param, f"{param} must not be an empty string")


def _token_array(value: list[Any], param: str) -> list[int]:
    if not value:
        raise InvalidInput(param, f"{param} must not be an empty token array")
    for index, token in enumerate(value):
        if not _is_token(token):
            raise InvalidInput(f"{param}.{index}", "token arrays must contain only integers")
    return value
