"""RunPod worker for chat: OpenAI chat/completions on vLLM (GPU) or transformers (CPU).

``handler(job)`` is an async generator started with ``return_aggregate_stream``, as
worker-vllm is: a sync call yields one ``chat.completion`` (RunPod's output is then a
one-element list), a stream yields SSE text pieces ending ``data: [DONE]``. A failure
yields ``{"error": "<JSON>"}`` (a string: the SDK turns a yielded dict into its repr), which
makes the SDK mark the job FAILED. Prompts and outputs are never logged nor echoed in errors.
Image parts are fetched (or decoded) here, through the media helper, before the prompt is
rendered; an engine only ever sees decoded images.
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

from handlers.chat.engine import ChatEngine, ChatSettings, Prompt, build_engine, load_engine
from handlers.chat.openai_format import ResponseBuilder, models_list
from handlers.chat.respond import complete, constraint_param, sampling_options, stream
from handlers.chat.schema import ChatJob, parse_job
from handlers.chat.template import check_control_tokens
from handlers.chat.vision import load_images
from handlers.common.errors import HandlerError, InvalidInput, server_error
from handlers.common.serve import quiet_sdk_logs

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
        engine, settings = loaded.engine, loaded.settings
        prompt = await _prompt(request, engine, settings)
        options = sampling_options(request, prompt.tokens, engine.max_model_len, settings)
        if options.constraint is not None:
            engine.check(options, constraint_param(request))
        builder = ResponseBuilder(
            request.route, request.model or settings.served_name, prompt.tokens, request.include_usage
        )
        if request.stream:
            # aclosing: a client that leaves closes the engine's generator now, not at GC time.
            async with aclosing(stream(request, engine, prompt, options, builder, settings)) as events:
                async for event in events:
                    yield event
        else:
            yield await complete(request, engine, prompt, options, builder, settings)
    except HandlerError as exc:
        yield exc.to_output()
    except Exception as exc:  # the job must still end FAILED with a described error
        # Only the type: messages of tokenizer or engine errors can quote the prompt.
        log.error("chat job failed: %s", type(exc).__name__)
        yield server_error(f"chat generation failed ({type(exc).__name__})")


async def _prompt(request: ChatJob, engine: ChatEngine, settings: ChatSettings) -> Prompt:
    """The rendered prompt, images fetched and decoded (in a thread: it is network and CPU work)."""
    if request.messages is None:
        return engine.text_prompt(request.prompt or "")
    if request.images and not engine.vision:
        raise InvalidInput(
            request.images[0].param,
            "this model reads text only; image parts need a vision model",
            code="unsupported_content",
        )
    tools = request.tools.tools if request.tools is not None and request.tools.active else None
    if tools and request.tools is not None and request.tools.mode == "auto" and settings.tool_parser == "none":
        raise InvalidInput(
            "tools", "this worker has no tool parser (CHAT_TOOL_PARSER=none)", code="unsupported_parameter"
        )
    check_control_tokens(engine.tokenizer, request.messages, tools)
    images = await asyncio.to_thread(load_images, request.images, settings) if request.images else []
    return engine.chat_prompt(request.messages, images, tools)


def use_volume_for_compile_cache(environ: MutableMapping[str, str], volume: Path | None = None) -> None:
    """Keep vLLM's compile cache (torch.compile, CUDA graphs) on the network volume when one
    is attached, so the next worker reuses it instead of compiling again."""
    volume = volume or NETWORK_VOLUME
    if "VLLM_CACHE_ROOT" not in environ and volume.is_dir():
        environ["VLLM_CACHE_ROOT"] = str(volume / "vllm-cache")


def main() -> None:
    quiet_sdk_logs()
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
