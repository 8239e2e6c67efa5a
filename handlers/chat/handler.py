"""RunPod worker for chat: OpenAI chat/completions on vLLM (GPU) or transformers (CPU).

``handler(job)`` is an async generator started with ``return_aggregate_stream``, as
worker-vllm is: a sync call yields one ``chat.completion`` (RunPod's output is then a
one-element list), a stream yields SSE text pieces ending ``data: [DONE]``. A failure
yields ``{"error": {...}}``, which makes the SDK mark the job FAILED. Prompts and
outputs are never logged nor echoed in errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from handlers.chat.engine import ChatEngine, ChatSettings, SamplingOptions, load_engine
from handlers.chat.openai_format import DONE, ResponseBuilder, models_list
from handlers.chat.schema import ChatJob, Sampling, parse_job
from handlers.common.errors import HandlerError, InvalidInput, server_error

log = logging.getLogger("dryapi.handlers.chat")


@dataclass(frozen=True)
class _Loaded:
    settings: ChatSettings
    engine: ChatEngine


_loaded: _Loaded | None = None
# Concurrent first jobs wait for one load instead of loading the model twice.
_load_lock = asyncio.Lock()


async def get_engine() -> _Loaded:
    """The worker's engine, loaded on the first job and kept for the life of the process."""
    global _loaded
    if _loaded is None:
        async with _load_lock:
            if _loaded is None:
                settings = ChatSettings.from_env()
                try:
                    engine = await load_engine(settings)
                except HandlerError:
                    raise
                except Exception as exc:
                    # Loading sees no client data, so its message is safe to show: it names
                    # what operators must fix (a wrong id, offline mode, out of memory).
                    log.exception("chat model %s failed to load", settings.model)
                    raise HandlerError(
                        f"the chat model {settings.model!r} failed to load: {type(exc).__name__}: {str(exc)[:300]}",
                        code="model_load_failed",
                    ) from None
                _loaded = _Loaded(settings, engine)
    return _loaded


def unload_engine() -> None:
    """Forget the loaded engine so the next job reads the environment again (tests, reloads)."""
    global _loaded
    _loaded = None


async def handler(job: dict[str, Any]) -> AsyncGenerator[Any, None]:
    try:
        request = parse_job(job.get("input"))
        if request.route == "models":
            yield models_list(ChatSettings.from_env().served_name)
            return
        loaded = await get_engine()
        engine = loaded.engine
        if request.messages is not None:
            prompt_ids = engine.chat_prompt_ids(request.messages)
        else:
            prompt_ids = engine.text_prompt_ids(request.prompt or "")
        options = sampling_options(request, len(prompt_ids), engine.max_model_len, loaded.settings)
        builder = ResponseBuilder(
            request.route,
            request.model or loaded.settings.served_name,
            len(prompt_ids),
            request.include_usage,
        )
        if request.stream:
            # aclosing: a client that leaves closes the engine's generator now, not at GC time.
            async with aclosing(_stream(engine, prompt_ids, options, builder)) as events:
                async for event in events:
                    yield event
        else:
            yield await _complete(engine, prompt_ids, options, builder)
    except HandlerError as exc:
        yield exc.to_output()
    except Exception as exc:  # the job must still end FAILED with a described error
        # Only the type: messages of tokenizer or engine errors can quote the prompt.
        log.error("chat job failed: %s", type(exc).__name__)
        yield server_error(f"chat generation failed ({type(exc).__name__})")


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
    )


async def _complete(
    engine: ChatEngine, prompt_ids: list[int], options: SamplingOptions, builder: ResponseBuilder
) -> dict[str, Any]:
    parts: list[list[str]] = [[] for _ in range(options.n)]
    finishes = ["stop"] * options.n
    completion_tokens = 0
    async with aclosing(engine.generate(prompt_ids, options)) as deltas:
        async for delta in deltas:
            parts[delta.index].append(delta.text)
            if delta.finish_reason is not None:
                finishes[delta.index] = delta.finish_reason
                completion_tokens += delta.completion_tokens
    return builder.completion(["".join(p) for p in parts], finishes, completion_tokens)


async def _stream(
    engine: ChatEngine, prompt_ids: list[int], options: SamplingOptions, builder: ResponseBuilder
) -> AsyncGenerator[str, None]:
    for index in range(options.n):
        opening = builder.role_chunk(index)
        if opening is not None:
            yield opening
    completion_tokens = 0
    async with aclosing(engine.generate(prompt_ids, options)) as deltas:
        async for delta in deltas:
            if delta.text:
                yield builder.text_chunk(delta.index, delta.text)
            if delta.finish_reason is not None:
                completion_tokens += delta.completion_tokens
                yield builder.finish_chunk(delta.index, delta.finish_reason)
    if builder.include_usage:
        yield builder.usage_chunk(completion_tokens)
    yield DONE


if __name__ == "__main__":
    import runpod

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _settings = ChatSettings.from_env()
    runpod.serverless.start(
        {
            "handler": handler,
            "return_aggregate_stream": True,
            # vLLM batches concurrent jobs on one GPU; MAX_CONCURRENCY sets how many it pulls.
            "concurrency_modifier": lambda _current: _settings.concurrency(),
        }
    )
