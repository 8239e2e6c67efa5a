"""From a validated job and a rendered prompt to OpenAI responses: sync object or SSE pieces.

Plain text streams as it is generated. When tools are active the text of each choice is
gathered first and read for tool calls (``tools.read_tool_calls``): a stream then carries, per
choice, one chunk with either the content or the ``tool_calls`` (complete, with ids), then
the finish chunk, so a client never sees a half-written call.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from handlers.chat.coalesce import coalesce
from handlers.chat.engine import ChatEngine, ChatSettings, Constraint, Delta, Prompt, SamplingOptions, TokenLogprob
from handlers.chat.openai_format import DONE, ResponseBuilder
from handlers.chat.schema import ChatJob, Sampling
from handlers.chat.tools import read_tool_calls
from handlers.common.errors import InvalidInput


def sampling_options(
    request: ChatJob, prompt_tokens: int, max_model_len: int, settings: ChatSettings
) -> SamplingOptions:
    """The request's sampling fields, with the completion length fitted to the context."""
    room = max_model_len - prompt_tokens
    if room <= 0:
        raise InvalidInput(
            "messages" if request.messages is not None else "prompt",
            f"the prompt is {prompt_tokens} tokens; this model's context is {max_model_len} tokens",
            code="context_length_exceeded",
        )
    requested, param = request.requested_max_tokens()
    if requested is None:
        max_tokens = min(room, settings.default_max_tokens or room)
    elif requested > room:
        raise InvalidInput(
            param,
            f"{param.rsplit('.', 1)[-1]} ({requested}) plus the prompt ({prompt_tokens} tokens) exceeds "
            f"this model's context of {max_model_len} tokens",
            code="context_length_exceeded",
        )
    else:
        max_tokens = requested
    sampling = request.sampling or Sampling()
    return SamplingOptions(
        max_tokens=max_tokens,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        stop=request.stops(),
        seed=sampling.seed,
        n=sampling.n or 1,
        presence_penalty=sampling.presence_penalty,
        frequency_penalty=sampling.frequency_penalty,
        constraint=constraint_of(request),
        logprobs=request.logprobs,
    )


def constraint_of(request: ChatJob) -> Constraint | None:
    """A forced tool call wins over ``response_format`` (the call is the answer)."""
    forced = request.tools.schema() if request.tools is not None else None
    if forced is not None:
        return Constraint(forced)
    if request.output is not None:
        return Constraint(request.output.schema)
    return None


def constraint_param(request: ChatJob) -> str:
    if request.tools is not None and request.tools.schema() is not None:
        return "tools"
    if request.output is not None and request.output.kind == "json_schema":
        return "response_format.json_schema.schema"
    return "response_format"


class _Choices:
    """Text, finish reason and logprobs gathered per choice."""

    def __init__(self, n: int, logprobs: bool) -> None:
        self.texts: list[list[str]] = [[] for _ in range(n)]
        self.finishes = ["stop"] * n
        self.logprobs: list[list[TokenLogprob]] | None = [[] for _ in range(n)] if logprobs else None
        self.completion_tokens = 0

    def add(self, delta: Delta) -> None:
        self.texts[delta.index].append(delta.text)
        if self.logprobs is not None and delta.logprobs:
            self.logprobs[delta.index] += delta.logprobs
        if delta.finish_reason is not None:
            self.finishes[delta.index] = delta.finish_reason
            self.completion_tokens += delta.completion_tokens

    def text(self, index: int) -> str:
        return "".join(self.texts[index])


async def _gather(engine: ChatEngine, prompt: Prompt, options: SamplingOptions) -> _Choices:
    choices = _Choices(options.n, options.logprobs is not None)
    async with aclosing(engine.generate(prompt, options)) as deltas:
        async for delta in deltas:
            choices.add(delta)
    return choices


def _tool_calls(request: ChatJob, choices: _Choices, parser: str) -> list[list[dict[str, Any]] | None]:
    calls: list[list[dict[str, Any]] | None] = []
    for index in range(len(choices.texts)):
        if request.tools is None or not request.tools.active:
            calls.append(None)
            continue
        content, found = read_tool_calls(choices.text(index), request.tools, parser)
        if found:
            choices.texts[index] = [content or ""]
            choices.finishes[index] = "tool_calls"
        calls.append(found or None)
    return calls


async def complete(
    request: ChatJob,
    engine: ChatEngine,
    prompt: Prompt,
    options: SamplingOptions,
    builder: ResponseBuilder,
    settings: ChatSettings,
) -> dict[str, Any]:
    choices = await _gather(engine, prompt, options)
    calls = _tool_calls(request, choices, settings.tool_parser)
    texts = [choices.text(i) for i in range(options.n)]
    return builder.completion(texts, choices.finishes, choices.completion_tokens, calls, choices.logprobs)


async def stream(
    request: ChatJob,
    engine: ChatEngine,
    prompt: Prompt,
    options: SamplingOptions,
    builder: ResponseBuilder,
    settings: ChatSettings,
) -> AsyncGenerator[str, None]:
    for index in range(options.n):
        opening = builder.role_chunk(index)
        if opening is not None:
            yield opening
    if request.tools is not None and request.tools.active:
        choices = await _gather(engine, prompt, options)
        calls = _tool_calls(request, choices, settings.tool_parser)
        for index in range(options.n):
            logprobs = choices.logprobs[index] if choices.logprobs is not None else None
            found = calls[index]
            if found:
                yield builder.tool_chunk(index, found)
            elif choices.text(index) or logprobs:
                yield builder.text_chunk(index, choices.text(index), logprobs)
            yield builder.finish_chunk(index, choices.finishes[index])
        completion_tokens = choices.completion_tokens
    else:
        completion_tokens = 0
        deltas = coalesce(engine.generate(prompt, options), settings)
        async with aclosing(deltas):
            async for delta in deltas:
                if delta.text or delta.logprobs:
                    yield builder.text_chunk(delta.index, delta.text, delta.logprobs)
                if delta.finish_reason is not None:
                    completion_tokens += delta.completion_tokens
                    yield builder.finish_chunk(delta.index, delta.finish_reason)
    if builder.include_usage:
        yield builder.usage_chunk(completion_tokens)
    yield DONE
