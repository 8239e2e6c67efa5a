"""Environment settings of the embeddings worker.

``LoadConfig`` holds what decides which model is loaded and how (a change means a reload);
``JobSettings`` holds what is read per job (batching, truncation), so tuning them needs
no restart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from handlers.common.errors import HandlerError

DEFAULT_MODEL = "BAAI/bge-m3"
DEFAULT_BATCH_SIZE = 32
DEFAULT_BATCH_TOKENS = 16_384

_TRUE = {"1", "true", "yes", "on"}


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def _env_int(name: str, default: int, *, minimum: int = 1) -> int:
    raw = _env(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _misconfigured(f"{name} must be an integer") from None
    if value < minimum:
        raise _misconfigured(f"{name} must be at least {minimum}")
    return value


def _misconfigured(message: str) -> HandlerError:
    # The operator's fault, not the client's: a server_error naming the variable.
    return HandlerError(f"Embeddings worker misconfigured: {message}", code="bad_configuration")


def _env_bool(name: str) -> bool:
    return _env(name).lower() in _TRUE


@dataclass(frozen=True)
class LoadConfig:
    """How the model is loaded; compared by value to decide whether to reload."""

    model: str = DEFAULT_MODEL
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto (float16 on CUDA, else float32) | float32 | float16 | bfloat16
    max_tokens: int | None = None  # lowers the model's own per-input limit
    trust_remote_code: bool = False
    baked_dir: str | None = None  # where the image build saved a model (bake.py)

    @classmethod
    def from_env(cls) -> LoadConfig:
        max_tokens = _env_int("EMBEDDINGS_MAX_TOKENS", 0, minimum=0)
        return cls(
            model=_env("EMBEDDINGS_MODEL", DEFAULT_MODEL),
            device=_env("EMBEDDINGS_DEVICE", "auto").lower(),
            dtype=_env("EMBEDDINGS_DTYPE", "auto").lower(),
            max_tokens=max_tokens or None,
            trust_remote_code=_env_bool("EMBEDDINGS_TRUST_REMOTE_CODE"),
            baked_dir=_env("EMBEDDINGS_BAKED_DIR") or None,
        )


@dataclass(frozen=True)
class JobSettings:
    """Per-job knobs: inputs per forward pass, padded tokens per forward pass, truncation."""

    batch_size: int = DEFAULT_BATCH_SIZE
    batch_tokens: int = DEFAULT_BATCH_TOKENS
    truncate: bool = False  # True: cut over-long inputs to the limit instead of failing

    @classmethod
    def from_env(cls) -> JobSettings:
        return cls(
            batch_size=_env_int("EMBEDDINGS_BATCH_SIZE", DEFAULT_BATCH_SIZE),
            batch_tokens=_env_int("EMBEDDINGS_MAX_BATCH_TOKENS", DEFAULT_BATCH_TOKENS),
            truncate=_env_bool("EMBEDDINGS_TRUNCATE"),
        )
