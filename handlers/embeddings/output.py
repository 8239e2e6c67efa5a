"""OpenAI's embeddings response from unit-length vectors: ``dimensions`` and base64."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import numpy.typing as npt

from handlers.embeddings.schema import EncodingFormat

Vectors = npt.NDArray[np.float32]
_LITTLE_ENDIAN_F32 = np.dtype("<f4")


def shorten(vectors: Vectors, dimensions: int | None) -> Vectors:
    """Keep the first ``dimensions`` values and re-normalise, as OpenAI's ``dimensions`` does.

    Only meaningful for models trained for it (Matryoshka); for others it still returns unit
    vectors, just less faithful ones.
    """
    if dimensions is None or dimensions >= vectors.shape[1]:
        return vectors
    cut = vectors[:, :dimensions]
    norms = np.linalg.norm(cut, axis=1, keepdims=True)
    return np.asarray(cut / np.maximum(norms, 1e-12), dtype=np.float32)


def to_base64(vector: npt.NDArray[np.float32]) -> str:
    """Little-endian float32 bytes, base64: what the openai SDK decodes with numpy."""
    return base64.b64encode(vector.astype(_LITTLE_ENDIAN_F32, copy=False).tobytes()).decode("ascii")


def response(vectors: Vectors, fmt: EncodingFormat, model: str, prompt_tokens: int) -> dict[str, Any]:
    """The ``{"object": "list", "data", "model", "usage"}`` body."""
    encode = to_base64 if fmt == "base64" else _to_floats
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": encode(vector)} for index, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def _to_floats(vector: npt.NDArray[np.float32]) -> list[float]:
    values: list[float] = vector.tolist()
    return values
