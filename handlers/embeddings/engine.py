"""One sentence-transformers model per worker process, shared by every job.

``load()`` (or the first job) builds the engine; later calls return it, unless the
load-relevant environment changed (tests and `serve --local` switch models that way).
The model and its tokenizer sit behind one lock: HF fast tokenizers raise "Already
borrowed" when two threads change truncation settings at once, and one forward pass at a
time is what a single GPU does anyway. The lock is taken per batch, so a small request is
not stuck behind all of a 2048-input one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from handlers.common.errors import HandlerError, InvalidInput
from handlers.embeddings.batching import plan_batches
from handlers.embeddings.settings import JobSettings, LoadConfig
from handlers.embeddings.source import ModelSource, resolve

logger = logging.getLogger("handlers.embeddings")

_FALLBACK_MAX_TOKENS = 512
Vectors = npt.NDArray[np.float32]


class EmbeddingEngine:
    """A loaded model: tokenizer helpers and batched, L2-normalised float32 embeddings."""

    def __init__(self, model: Any, source: ModelSource, config: LoadConfig, device: str) -> None:
        self._model = model
        self._tokenizer = model.tokenizer
        self._lock = threading.Lock()
        self.config = config
        self.name = source.name
        self.device = device
        self.vocab_size = len(self._tokenizer)
        self.max_tokens = _max_tokens(model, config.max_tokens)
        model.max_seq_length = self.max_tokens  # so truncation (EMBEDDINGS_TRUNCATE) cuts here
        # A warm-up pass: the first forward is slow, and its width is the dimension
        # whatever the model's config calls it.
        self.dimension = int(self._encode(["warm up"]).shape[1])

    def decode(self, ids: list[int], param: str) -> str:
        """Text of a token array, which must come from this model's tokenizer."""
        if min(ids) < 0 or max(ids) >= self.vocab_size:
            raise InvalidInput(
                param,
                f"{param} has a token id outside this model's vocabulary (0 to {self.vocab_size - 1}); "
                "token arrays must come from this model's tokenizer",
            )
        with self._lock:
            text: str = self._tokenizer.decode(ids, skip_special_tokens=True)
        if not text.strip():
            raise InvalidInput(param, f"{param} decodes to empty text")
        return text

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text as the model sees them, special tokens included, untruncated."""
        with self._lock:
            encoded = self._tokenizer(
                texts,
                add_special_tokens=True,
                truncation=False,
                return_attention_mask=False,
                return_token_type_ids=False,
                verbose=False,  # no "sequence longer than" warning: the handler reports it
            )
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(
        self,
        texts: list[str],
        lengths: list[int],
        settings: JobSettings,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> Vectors:
        """Unit-length float32 embeddings of ``texts`` in order; ``on_batch(done, total)``."""
        batches = plan_batches(lengths, settings.batch_size, settings.batch_tokens)
        out: Vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for done, batch in enumerate(batches, start=1):
            out[batch] = self._encode([texts[index] for index in batch])
            if on_batch is not None:
                on_batch(done, len(batches))
        return out

    def _encode(self, texts: list[str]) -> Vectors:
        with self._lock:
            vectors = self._model.encode(
                texts,
                batch_size=len(texts),
                convert_to_numpy=True,
                normalize_embeddings=True,  # OpenAI embeddings are unit length
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


_load_lock = threading.Lock()
_engine: EmbeddingEngine | None = None


def get_engine() -> EmbeddingEngine:
    """The worker's engine for the current environment, loading it if needed."""
    engine = _engine
    config = LoadConfig.from_env()
    if engine is not None and engine.config == config:
        return engine
    return load(config)


def load(config: LoadConfig | None = None) -> EmbeddingEngine:
    """Load the configured model once (thread-safe); a failed load is retried next time."""
    global _engine
    config = config or LoadConfig.from_env()
    with _load_lock:
        if _engine is not None and _engine.config == config:
            return _engine
        _engine = _build(config)
        return _engine


def _build(config: LoadConfig) -> EmbeddingEngine:
    source = resolve(config.model, config.baked_dir)
    started = time.perf_counter()
    try:
        device = _device(config.device)
        model = _load_model(source, config, device)
        engine = EmbeddingEngine(model, source, config, device)
    except HandlerError:
        raise
    except Exception as exc:  # reported as a server_error, detail in the log
        # Load errors quote paths and hub ids, never job input, so the log may show them.
        logger.error("loading embeddings model %s failed: %s: %s", source.name, type(exc).__name__, exc)
        raise HandlerError(
            f"Could not load embeddings model {source.name} ({type(exc).__name__}); see the worker log",
            code="model_load_failed",
        ) from None
    logger.info(
        "loaded embeddings model %s on %s: %d dimensions, %d tokens per input, %.1f s",
        source.name,
        device,
        engine.dimension,
        engine.max_tokens,
        time.perf_counter() - started,
    )
    return engine


def _load_model(source: ModelSource, config: LoadConfig, device: str) -> Any:
    import torch  # imported here so the handler module imports fast
    from sentence_transformers import SentenceTransformer

    dtype = _dtype(config.dtype, device)  # before the slow part: a bad value fails fast
    model = SentenceTransformer(source.location, device=device, trust_remote_code=config.trust_remote_code)
    if dtype != "float32":
        model.to(getattr(torch, dtype))
    model.eval()
    return model


def _device(setting: str) -> str:
    if setting != "auto":
        return setting
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def _dtype(setting: str, device: str) -> str:
    if setting == "auto":
        return "float16" if device.startswith("cuda") else "float32"
    if setting not in {"float32", "float16", "bfloat16"}:
        raise HandlerError(
            "Embeddings worker misconfigured: EMBEDDINGS_DTYPE must be auto, float32, float16 or bfloat16",
            code="bad_configuration",
        )
    return setting


def _max_tokens(model: Any, cap: int | None) -> int:
    limit = model.max_seq_length
    if not limit:
        # Some checkpoints only record the tokenizer's limit (or a huge sentinel for "none").
        tokenizer_limit = getattr(model.tokenizer, "model_max_length", None)
        limit = tokenizer_limit if isinstance(tokenizer_limit, int) and tokenizer_limit < 100_000 else None
    limit = int(limit or _FALLBACK_MAX_TOKENS)
    return min(limit, cap) if cap else limit
