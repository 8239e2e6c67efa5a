"""Chat job input: the worker-vllm dialects, validated into one ``ChatJob``.

Two shapes arrive: RunPod's OpenAI route ``{"openai_route", "openai_input": {OpenAI body}}``
and worker-vllm's native ``{"messages" | "prompt", "sampling_params", "stream"}``. Unknown
fields are ignored (OpenAI clients send many we do not use); known fields are checked and
a bad one fails the job naming it as the client wrote it (``messages.0.role``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from handlers.common.errors import InvalidInput
from handlers.common.validation import parse_input

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
Route = Literal["chat", "completion", "models"]
ROUTES: dict[str, Route] = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completion",
    "/v1/models": "models",
}
MAX_N = 128
MAX_STOPS = 16
# Chat templates know the classic roles; OpenAI's newer names map onto them.
_TEMPLATE_ROLE = {"developer": "system", "function": "tool"}


class ContentPart(msgspec.Struct):
    type: str
    text: str | None = None


class Message(msgspec.Struct):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None


class StreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class Sampling(msgspec.Struct, kw_only=True):
    """The OpenAI sampling fields, also worker-vllm's ``sampling_params``."""

    max_tokens: Annotated[int, Meta(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Meta(ge=1)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    n: Annotated[int, Meta(ge=1, le=MAX_N)] | None = None
    stop: str | Annotated[list[str], Meta(max_length=MAX_STOPS)] | None = None
    seed: int | None = None
    presence_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None


class ChatBody(Sampling, kw_only=True):
    messages: Annotated[list[Message], Meta(min_length=1)]
    model: str | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None


class CompletionBody(Sampling, kw_only=True):
    prompt: str
    model: str | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None


class OpenAIEnvelope(msgspec.Struct):
    openai_route: str
    openai_input: dict[str, Any] = {}


class NativeInput(msgspec.Struct, kw_only=True):
    messages: Annotated[list[Message], Meta(min_length=1)] | None = None
    prompt: str | None = None
    sampling_params: Sampling | None = None
    stream: bool | None = False
    model: str | None = None


@dataclass(frozen=True)
class ChatJob:
    route: Route
    model: str | None = None
    messages: list[dict[str, Any]] | None = None
    prompt: str | None = None
    sampling: Sampling | None = None
    stream: bool = False
    include_usage: bool = False
    # Where the sampling fields sit in the client's input, for error params.
    param_prefix: str = ""

    def requested_max_tokens(self) -> tuple[int | None, str]:
        """The client's completion-length limit and the field it came from."""
        sampling = self.sampling or Sampling()
        if sampling.max_completion_tokens is not None:
            return sampling.max_completion_tokens, f"{self.param_prefix}max_completion_tokens"
        return sampling.max_tokens, f"{self.param_prefix}max_tokens"

    def stops(self) -> tuple[str, ...]:
        stop = (self.sampling or Sampling()).stop
        if stop is None:
            return ()
        return (stop,) if isinstance(stop, str) else tuple(stop)


def parse_job(raw: Any) -> ChatJob:
    """Validate a job's ``input`` in either dialect; raises ``InvalidInput`` naming the field."""
    if isinstance(raw, dict) and ("openai_route" in raw or "openai_input" in raw):
        return _parse_openai(parse_input(raw, OpenAIEnvelope))
    native = parse_input(raw, NativeInput)
    if native.messages is None and native.prompt is None:
        raise InvalidInput("messages", "input needs `messages` (chat) or `prompt` (completion)")
    return ChatJob(
        route="chat" if native.messages is not None else "completion",
        model=native.model,
        messages=_template_messages(native.messages) if native.messages is not None else None,
        prompt=native.prompt if native.messages is None else None,
        sampling=native.sampling_params or Sampling(),
        stream=bool(native.stream),
        param_prefix="sampling_params.",
    )


def _parse_openai(envelope: OpenAIEnvelope) -> ChatJob:
    path = envelope.openai_route.strip().rstrip("/")
    route = ROUTES.get(path if path.startswith("/v1") else f"/v1{path}")
    if route is None:
        raise InvalidInput(
            "openai_route",
            f"unsupported route {envelope.openai_route!r}; this worker serves {', '.join(ROUTES)}",
            code="unsupported_route",
        )
    if route == "models":
        return ChatJob(route="models")
    body: ChatBody | CompletionBody
    if route == "chat":
        body = parse_input(envelope.openai_input, ChatBody)
    else:
        body = parse_input(envelope.openai_input, CompletionBody)
    stream = bool(body.stream)
    return ChatJob(
        route=route,
        model=body.model,
        messages=_template_messages(body.messages) if isinstance(body, ChatBody) else None,
        prompt=body.prompt if isinstance(body, CompletionBody) else None,
        sampling=body,
        stream=stream,
        include_usage=stream and bool(body.stream_options and body.stream_options.include_usage),
    )


def _template_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as chat templates expect them: plain-text content, classic role names."""
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        content = message.content
        if isinstance(content, list):
            texts: list[str] = []
            for j, part in enumerate(content):
                if part.type != "text":
                    raise InvalidInput(
                        f"messages.{i}.content.{j}.type",
                        f"content parts of type {part.type!r} are not supported; this model reads text",
                        code="unsupported_content",
                    )
                if part.text is None:
                    raise InvalidInput(f"messages.{i}.content.{j}.text", "a text part needs `text`")
                texts.append(part.text)
            content = "\n".join(texts)
        item: dict[str, Any] = {
            "role": _TEMPLATE_ROLE.get(message.role, message.role),
            "content": content or "",
        }
        if message.name is not None:
            item["name"] = message.name
        if message.tool_call_id is not None:
            item["tool_call_id"] = message.tool_call_id
        out.append(item)
    return out
