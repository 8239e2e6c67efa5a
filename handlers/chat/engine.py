"""The interface every chat engine implements, and the settings that pick one.

The handler speaks only to ``ChatEngine``: it tokenizes (so ``usage`` is counted the same
way for every engine) and streams ``Delta`` pieces per choice. vLLM and transformers live
in their own modules, imported only when chosen, so a CPU box never imports vLLM.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, overload

from handlers.chat.tools import PARSERS
from handlers.common.errors import HandlerError

# A laptop CPU runs this through transformers; the GPU image overrides it.
DEFAULT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
# Where the Dockerfile bakes a model when built with --build-arg BAKED_MODEL=...
DEFAULT_BAKED_DIR = "/models/chat"
BAKED_MARKER = ".dryapi-model"

EngineKind = Literal["vllm", "transformers"]
FinishReason = Literal["stop", "length"]
# Vision inputs: at most this many images per request, each at most this many pixels
# (CHAT_MAX_IMAGES, CHAT_MAX_IMAGE_PIXELS); bytes are capped by the media helper (10 MB).
DEFAULT_MAX_IMAGES = 8
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096


@dataclass
class Prompt:
    """A rendered prompt: token ids (one placeholder per image) and the decoded images.

    ``tokens`` is what ``usage.prompt_tokens`` reports and the context check uses: with
    images, the placeholders as the model expands them (Qwen2-VL: one token per 28x28 patch).
    """

    ids: list[int]
    tokens: int
    images: list[Any] = field(default_factory=list)
    # Engine-private model inputs (the transformers engine's pixel values, grids, expanded ids).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Constraint:
    """Output constrained to JSON: ``schema`` is a JSON schema, or None for any JSON object."""

    schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class SamplingOptions:
    """Sampling knobs after validation; ``None`` means "the model's default"."""

    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    constraint: Constraint | None = None
    logprobs: int | None = None  # None: off; k: the chosen token's and the k most likely

    @property
    def greedy(self) -> bool:
        # temperature 0 (and the degenerate nucleus top_p 0) mean "always the top token".
        return self.temperature == 0 or self.top_p == 0


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its log-probability and the most likely alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass
class Delta:
    """New text for one choice; the last delta of a choice carries its finish data."""

    index: int
    text: str = ""
    finish_reason: FinishReason | None = None
    completion_tokens: int = 0
    logprobs: list[TokenLogprob] | None = None  # the tokens behind ``text``, when asked for


class ChatEngine(Protocol):
    """What the handler needs from an engine; both engines are loaded once per worker."""

    kind: EngineKind
    max_model_len: int
    vision: bool  # reads image parts
    tokenizer: Any

    def check(self, options: SamplingOptions, param: str) -> None:
        """Refuse, before any work, a constraint this engine cannot follow (naming ``param``)."""
        ...

    def chat_prompt(
        self, messages: list[dict[str, Any]], images: list[Any], tools: list[dict[str, Any]] | None
    ) -> Prompt:
        """``messages`` rendered with the model's chat template (tools and images included)."""
        ...

    def text_prompt(self, prompt: str) -> Prompt:
        """A raw completion prompt (special tokens as the tokenizer adds them)."""
        ...

    def generate(self, prompt: Prompt, options: SamplingOptions) -> AsyncGenerator[Delta, None]:
        """Stream deltas for ``options.n`` choices; each choice ends with one finishing delta."""
        ...


@dataclass(frozen=True)
class ChatSettings:
    """Environment settings, read when the engine loads (tests point them at a tiny model)."""

    model: str
    served_name: str
    engine: Literal["auto", "vllm", "transformers"]
    max_concurrency: int | None
    max_model_len: int | None
    default_max_tokens: int | None
    trust_remote_code: bool
    baked_dir: Path
    vllm_args: dict[str, Any] = field(default_factory=dict)
    # Streaming: deltas are merged into one yield (one HTTP post to RunPod each) until this
    # much time has passed since the last yield or this many deltas are waiting; 0 = off.
    stream_interval_s: float = 0.05
    stream_max_deltas: int = 64
    tool_parser: str = "hermes"
    max_images: int = DEFAULT_MAX_IMAGES
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS

    @classmethod
    def from_env(cls) -> ChatSettings:
        model = os.environ.get("CHAT_MODEL") or os.environ.get("BAKED_MODEL") or DEFAULT_MODEL
        engine = (os.environ.get("CHAT_ENGINE") or "auto").strip().lower()
        if engine not in ("auto", "vllm", "transformers"):
            raise HandlerError(f"CHAT_ENGINE must be auto, vllm or transformers, not {engine!r}")
        tool_parser = (os.environ.get("CHAT_TOOL_PARSER") or "hermes").strip().lower()
        if tool_parser not in PARSERS:
            raise HandlerError(f"CHAT_TOOL_PARSER must be one of {', '.join(PARSERS)}, not {tool_parser!r}")
        return cls(
            model=model,
            served_name=os.environ.get("CHAT_SERVED_MODEL_NAME") or model,
            engine=engine,  # type: ignore[arg-type]
            max_concurrency=_int_env("MAX_CONCURRENCY"),
            max_model_len=_int_env("CHAT_MAX_MODEL_LEN"),
            # Without max_tokens a completion may fill the context, as with OpenAI; this caps it.
            default_max_tokens=_int_env("CHAT_DEFAULT_MAX_TOKENS"),
            trust_remote_code=os.environ.get("CHAT_TRUST_REMOTE_CODE", "").lower() in ("1", "true", "yes"),
            baked_dir=Path(os.environ.get("CHAT_BAKED_DIR") or DEFAULT_BAKED_DIR),
            stream_interval_s=_float_env("CHAT_STREAM_INTERVAL_MS", default=50.0) / 1000,
            stream_max_deltas=_int_env("CHAT_STREAM_MAX_DELTAS") or 64,
            tool_parser=tool_parser,
            max_images=_int_env("CHAT_MAX_IMAGES") or DEFAULT_MAX_IMAGES,
            max_image_pixels=_int_env("CHAT_MAX_IMAGE_PIXELS") or DEFAULT_MAX_IMAGE_PIXELS,
            vllm_args={
                "gpu_memory_utilization": _float_env("GPU_MEMORY_UTILIZATION") or 0.90,
                "tensor_parallel_size": _int_env("TENSOR_PARALLEL_SIZE") or 1,
                "dtype": os.environ.get("CHAT_DTYPE") or "auto",
                "quantization": os.environ.get("QUANTIZATION") or None,
                "enforce_eager": os.environ.get("ENFORCE_EAGER", "").lower() in ("1", "true", "yes"),
            },
        )

    def model_path(self) -> str:
        """A local directory as is; a hub id baked into the image resolves to its directory."""
        if Path(self.model).is_dir():
            return self.model
        marker = self.baked_dir / BAKED_MARKER
        if marker.is_file() and marker.read_text().strip() == self.model:
            return str(self.baked_dir)
        return self.model

    def engine_kind(self) -> EngineKind:
        if self.engine != "auto":
            return self.engine
        return "vllm" if _cuda_available() and vllm_installed() else "transformers"

    def concurrency(self) -> int:
        # vLLM batches continuously, so one worker takes many jobs (worker-vllm's default is 30);
        # the transformers engine generates one sequence at a time.
        if self.max_concurrency is not None:
            return max(1, self.max_concurrency)
        return 30 if self.engine_kind() == "vllm" else 1


def vllm_installed() -> bool:
    """Whether vLLM could be imported, without importing it."""
    return importlib.util.find_spec("vllm") is not None


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _int_env(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise HandlerError(f"{name} must be an integer, not {raw!r}") from None


@overload
def _float_env(name: str) -> float | None: ...
@overload
def _float_env(name: str, *, default: float) -> float: ...
def _float_env(name: str, *, default: float | None = None) -> float | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise HandlerError(f"{name} must be a number, not {raw!r}") from None


def context_limit(config: Any) -> int | None:
    """The longest context ``config`` (a transformers model config) supports, as vLLM derives it.

    ``max_position_embeddings``, stretched by a rope scaling factor for the scaling types that
    extend the context (yarn, dynamic, linear); llama3/longrope configs already state their
    full length in ``max_position_embeddings``.
    """
    text_config = getattr(config, "text_config", None) or config
    limit = getattr(text_config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return None
    scaling = getattr(text_config, "rope_scaling", None) or {}
    kind = scaling.get("rope_type") or scaling.get("type")
    factor = scaling.get("factor")
    if kind in ("yarn", "dynamic", "linear") and isinstance(factor, int | float) and factor > 1:
        base = scaling.get("original_max_position_embeddings") or limit
        return int(base * factor)
    return limit


def check_max_model_len(settings: ChatSettings, config: Any) -> None:
    """Refuse a ``CHAT_MAX_MODEL_LEN`` beyond what the model supports, naming both numbers."""
    limit = context_limit(config)
    if settings.max_model_len is not None and limit is not None and settings.max_model_len > limit:
        raise HandlerError(
            f"CHAT_MAX_MODEL_LEN={settings.max_model_len} exceeds the context of {settings.model} "
            f"({limit} tokens); set CHAT_MAX_MODEL_LEN to {limit} or less, or unset it",
            code="model_load_failed",
        )


def build_engine(settings: ChatSettings) -> ChatEngine:
    """Build the configured engine, blocking until the weights are loaded (and compiled).

    Called before ``runpod.serverless.start`` (no event loop running: vLLM starts its output
    task on the first request), so the worker takes no job it cannot serve yet and FlashBoot
    snapshots a loaded worker.
    """
    kind = settings.engine_kind()
    if kind == "vllm":
        if not vllm_installed():
            raise HandlerError("CHAT_ENGINE=vllm but vllm is not installed", code="engine_unavailable")
        from handlers.chat.engine_vllm import VLLMEngine

        return VLLMEngine.build(settings)
    from handlers.chat.engine_transformers import TransformersEngine

    return TransformersEngine.build(settings)


async def load_engine(settings: ChatSettings) -> ChatEngine:
    """Build the configured engine from inside a job (local runs and tests): in a thread for
    transformers; on the loop for vLLM, whose engine must be created in the process's loop."""
    if settings.engine_kind() == "vllm":
        return build_engine(settings)
    import asyncio

    return await asyncio.to_thread(build_engine, settings)
