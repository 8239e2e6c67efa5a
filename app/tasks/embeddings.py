"""txt2embedding: text to vectors on the embeddings surface (worker-infinity ``openai_route``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from app.routing.schema import ModelRoute
from app.tasks.common import TaskParams
from app.tasks.spec import TaskSpec, Uploads
from app.tasks.validation import FieldErrors

MAX_INPUTS = 2048
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200_000)]


class Txt2Embedding(TaskParams, kw_only=True):
    input: Text | Annotated[list[Text], msgspec.Meta(min_length=1, max_length=MAX_INPUTS)]


def _texts(params: Txt2Embedding) -> list[str]:
    return [params.input] if isinstance(params.input, str) else list(params.input)


def estimated_tokens(text: str) -> int:
    """An upper estimate before the worker counts: BPE vocabularies average ~4 characters per
    token in English; 3 keeps the hold above the real count for most text."""
    return max(1, -(-len(text) // 3))


def _check(params: Txt2Embedding, uploads: Uploads, route: ModelRoute) -> FieldErrors:
    limits = route.info.limits
    per_input, total = limits.get("max_input_tokens"), limits.get("max_total_tokens")
    counts = [estimated_tokens(text) for text in _texts(params)]
    errors: FieldErrors = []
    if isinstance(per_input, int | float) and any(count > per_input for count in counts):
        errors.append(("input", f"Each input may have at most {int(per_input)} tokens."))
    if isinstance(total, int | float) and sum(counts) > total:
        errors.append(("input", f"The inputs may have at most {int(total)} tokens together."))
    return errors[:1]


def _quantities(params: Txt2Embedding, uploads: Uploads, route: ModelRoute) -> dict[str, float]:
    return {"tokens": float(sum(estimated_tokens(text) for text in _texts(params)))}


def _worker_input(params: Txt2Embedding, upstream_model: str, urls: Mapping[str, list[str]]) -> dict[str, Any]:
    return {"openai_route": "/v1/embeddings", "openai_input": {"model": upstream_model, "input": params.input}}


TXT2EMBEDDING = TaskSpec(
    "txt2embedding", "embeddings", "txt2embedding", Txt2Embedding,
    check=_check, quantities=_quantities, worker_input=_worker_input,
)
