"""RunPod worker for chat: OpenAI chat/completions on vLLM (GPU) or transformers (CPU).

``handler(job)`` is an async generator started with ``return_aggregate_stream``, as
worker-vllm is: a sync call yields one ``chat.completion`` (RunPod's output is then a
one-element list), a stream yields SSE text pieces ending ``data: [DONE]``. A failure
yields ``{"error": "<JSON>"}`` (a string: the SDK turns a yielded dict into its repr), which
makes the SDK mark the job FAILED. Prompts and outputs are never logged nor echoed in errors.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncGenerator, MutableMapping
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handlers.chat.coalesce import coalesce
from handlers.chat.engine import ChatEngine, ChatSettings, Delta, SamplingOptions, build_engine, load_engine
from handlers.chat.openai_format import DONE, ResponseBuilder, models_list
from handlers.chat.schema import ChatJob, Sampling, parse_job
from handlers.common.errors import HandlerError, InvalidInput, server_error

log = logging.getLogger("dryapi.handlers.chat")

NETWORK_VOLUME = Path("/runpod-volume")  # where RunPod mounts an endpoint's network volume


@dataclass(frozen=True)
class _Loaded:
    settings: ChatSettings
    engine: ChatEngine


_loaded: _Loaded | None = None
# Concurrent first jobs wait for one load instead of loading the model twice.
_load_lock = asyncio.Lock()


_load_failure: HandlerError | None = None  # a failed load at start: every job reports it


def _describe_load_failure(settings: ChatSettings, exc: Exception) -> HandlerError:
    if isinstance(exc, HandlerError):
        return exc
    # Loading sees no client data, so its message is safe to show: it names what operators
    # must fix (a wrong id, offline mode, out of memory).
    log.error("chat model %s failed to load: %s", settings.model, type(exc).__name__, exc_info=exc)
    return HandlerError(
        f"the chat model {settings.model!r} failed to load: {type(exc).__name__}: {str(exc)[:300]}",
        code="model_load_failed",
    )


def preload() -> None:
    """Build the engine now, blocking: ``python -m handlers.chat.handler`` calls this before
    ``runpod.serverless.start``. A failure is kept and reported by every job."""
    global _loaded, _load_failure
    settings = ChatSettings.from_env()
    try:
        _loaded = _Loaded(settings, build_engine(settings))
    except Exception as exc:
        _load_failure = _describe_load_failure(settings, exc)


async def get_engine() -> _Loaded:
    """The worker's engine: preloaded at start on RunPod, else loaded on the first job."""
    global _loaded
    if _load_failure is not None:  # a fresh exception each time: re-raising one grows its traceback
        failure = _load_failure
        raise HandlerError(failure.message, type=failure.type, code=failure.code, param=failure.param)
    if _loaded is None:
        async with _load_lock:
            if _loaded is None:
                settings = ChatSettings.from_env()
                try:
                    engine = await load_engine(settings)
                except Exception as exc:
                    raise _describe_load_failure(settings, exc) from None
                _loaded = _Loaded(settings, engine)
    return _loaded


def unload_engine() -> None:
    """Forget the loaded engine so the next job reads the environment again (tests, reloads)."""
    global _loaded, _load_failure
    _loaded = None
    _load_failure = None


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
            deltas = coalesce(engine.generate(prompt_ids, options), loaded.settings)
            async with aclosing(_stream(deltas, options, builder)) as events:
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
    deltas: AsyncGenerator[Delta, None], options: SamplingOptions, builder: ResponseBuilder
) -> AsyncGenerator[str, None]:
    for index in range(options.n):
        opening = builder.role_chunk(index)
        if opening is not None:
            yield opening
    completion_tokens = 0
    async with aclosing(deltas):
        async for delta in deltas:
            if delta.text:
                yield builder.text_chunk(delta.index, delta.text)
            if delta.finish_reason is not None:
                completion_tokens += delta.completion_tokens
                yield builder.finish_chunk(delta.index, delta.finish_reason)
    if builder.include_usage:
        yield builder.usage_chunk(completion_tokens)
    yield DONE


def use_volume_for_compile_cache(environ: MutableMapping[str, str], volume: Path | None = None) -> None:
    """Keep vLLM's compile cache (torch.compile, CUDA graphs) on the network volume when one
    is attached, so the next worker reuses it instead of compiling again."""
    volume = volume or NETWORK_VOLUME
    if "VLLM_CACHE_ROOT" not in environ and volume.is_dir():
        environ["VLLM_CACHE_ROOT"] = str(volume / "vllm-cache")


def main() -> None:
    import runpod

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    use_volume_for_compile_cache(os.environ)
    preload()  # before start: no job is taken until the engine can serve it
    settings = ChatSettings.from_env()
    runpod.serverless.start(
        {
            "handler": handler,
            "return_aggregate_stream": True,
            # vLLM batches concurrent jobs on one GPU; MAX_CONCURRENCY sets how many it pulls.
            "concurrency_modifier": lambda _current: settings.concurrency(),
        }
    )


if __name__ == "__main__":
    main()
