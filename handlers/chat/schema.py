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

from handlers.chat.messages import ImageRef, template_messages
from handlers.chat.tools import OutputFormat, ToolPlan, output_format, tool_plan
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
MAX_TOOLS = 128
MAX_TOP_LOGPROBS = 20


class ImageURL(msgspec.Struct):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ContentPart(msgspec.Struct):
    type: str
    text: str | None = None
    image_url: ImageURL | str | None = None  # some clients send the URL as a bare string


class FunctionCall(msgspec.Struct):
    name: str
    arguments: str = "{}"


class ToolCall(msgspec.Struct):
    function: FunctionCall
    id: str | None = None
    type: Literal["function"] = "function"


class Message(msgspec.Struct):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: Annotated[list[ToolCall], Meta(max_length=MAX_TOOLS)] | None = None


class FunctionDef(msgspec.Struct):
    # OpenAI's rule for function names; they are also rendered into the prompt.
    name: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(msgspec.Struct):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(msgspec.Struct):
    name: str


class NamedToolChoice(msgspec.Struct):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(msgspec.Struct):
    name: Annotated[str, Meta(max_length=64)] = "response"
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class ResponseFormat(msgspec.Struct):
    type: str  # checked by hand: an unknown type is `unsupported_parameter`, not a bad value
    json_schema: JsonSchemaFormat | None = None


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
    tools: Annotated[list[Tool], Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=MAX_TOP_LOGPROBS)] | None = None


class CompletionBody(Sampling, kw_only=True):
    prompt: str
    model: str | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    # Completions' legacy shape: how many alternatives per token (OpenAI allows up to 5).
    logprobs: Annotated[int, Meta(ge=0, le=5)] | None = None


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
    images: tuple[ImageRef, ...] = ()
    tools: ToolPlan | None = None
    output: OutputFormat | None = None
    # Alternatives per token when the client asked for logprobs (0: the chosen token only).
    logprobs: int | None = None

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
    messages, images = template_messages(native.messages) if native.messages is not None else (None, [])
    return ChatJob(
        route="chat" if native.messages is not None else "completion",
        model=native.model,
        messages=messages,
        images=tuple(images),
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
    include_usage = stream and bool(body.stream_options and body.stream_options.include_usage)
    if isinstance(body, CompletionBody):
        return ChatJob(
            route=route, model=body.model, prompt=body.prompt, sampling=body, stream=stream,
            include_usage=include_usage, logprobs=body.logprobs,
        )
    messages, images = template_messages(body.messages)
    return ChatJob(
        route=route,
        model=body.model,
        messages=messages,
        sampling=body,
        stream=stream,
        include_usage=include_usage,
        images=tuple(images),
        tools=tool_plan(body.tools, body.tool_choice),
        output=output_format(body.response_format),
        logprobs=_logprobs(body.logprobs, body.top_logprobs),
    )


def _logprobs(logprobs: bool | None, top_logprobs: int | None) -> int | None:
    if logprobs:
        return top_logprobs or 0
    if top_logprobs:  # OpenAI: top_logprobs needs logprobs: true
        raise InvalidInput("top_logprobs", "top_logprobs needs `logprobs: true`")
    return None
