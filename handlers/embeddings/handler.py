"""RunPod handler for embeddings: ``handler(job)`` in the worker-infinity-embedding dialect.

Input and output are documented in handlers/README.md. Failures come back as
``{"error": <JSON string of {"type", "code", "message", "param"}>}`` so the job ends FAILED with a message
the gateway can show; inputs and embeddings are never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from handlers.common.cancel import CancelToken, run_in_thread
from handlers.common.errors import HandlerError, InvalidInput
from handlers.common.failures import unexpected_failure
from handlers.common.progress import report_progress
from handlers.common.serve import start
from handlers.embeddings import engine as engines
from handlers.embeddings.output import response, shorten
from handlers.embeddings.schema import (
    check_dimensions,
    collect_inputs,
    encoding_format,
    parse_body,
    route_of,
)
from handlers.embeddings.settings import JobSettings, LoadConfig
from handlers.embeddings.source import resolve

logger = logging.getLogger("handlers.embeddings")

PROGRESS_INTERVAL_S = 0.5  # RunPod posts every update over HTTP; not one per batch
_STARTED = int(time.time())


async def handler(job: dict[str, Any]) -> dict[str, Any]:
    """Embed the inputs one job asks for, in a thread; a cancelled job stops between batches."""
    try:
        if route_of(job.get("input")) == "models":
            return _models()
        return await run_in_thread(lambda cancel: _embed(job, cancel))
    except HandlerError as exc:
        return exc.to_output()
    except Exception as exc:  # never a traceback to the client
        return unexpected_failure(
            exc, logger, work="Embedding", oom="Out of GPU memory; send fewer or shorter inputs per request",
            code="embedding_failed",
        )


def _embed(job: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
    body = parse_body(job["input"])
    # Everything that needs no model is checked first, so bad input fails in milliseconds.
    inputs = collect_inputs(body.input)
    fmt = encoding_format(body.encoding_format)
    check_dimensions(body.dimensions)
    settings = JobSettings.from_env()

    engine = engines.get_engine()
    if body.dimensions is not None and body.dimensions > engine.dimension:
        raise InvalidInput("dimensions", f"dimensions must be at most {engine.dimension} for this model")
    texts = [
        item if isinstance(item, str) else engine.decode(item, param)
        for item, param in zip(inputs.items, inputs.params, strict=True)
    ]
    lengths = _checked_lengths(engine.count_tokens(texts), inputs.params, engine.max_tokens, settings.truncate)
    vectors = engine.embed(texts, lengths, settings, _progress(job, cancel))
    # A single-model worker serves its model whatever was asked, and echoes the name asked.
    return response(shorten(vectors, body.dimensions), fmt, body.model or engine.name, sum(lengths))


def _checked_lengths(lengths: list[int], params: list[str], limit: int, truncate: bool) -> list[int]:
    """Token counts as embedded; over-long inputs fail (or are cut when truncating)."""
    if truncate:
        return [min(length, limit) for length in lengths]
    for length, param in zip(lengths, params, strict=True):
        if length > limit:
            raise InvalidInput(
                param,
                f"{param} has {length} tokens; this model accepts at most {limit} tokens per input "
                "(special tokens included). Shorten or split it.",
                code="context_length_exceeded",
            )
    return lengths


def _progress(job: dict[str, Any], cancel: CancelToken) -> Callable[[int, int], None]:
    last = 0.0

    def on_batch(done: int, total: int) -> None:
        nonlocal last
        cancel.check()  # between batches: a cancelled job stops here
        now = time.monotonic()
        if done < total and now - last >= PROGRESS_INTERVAL_S:
            last = now
            report_progress(job, 100.0 * done / total)

    return on_batch


def _models() -> dict[str, Any]:
    """worker-infinity's ``/v1/models``: the one model this worker serves (not loaded for this)."""
    config = LoadConfig.from_env()
    name = resolve(config.model, config.baked_dir).name
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": _STARTED, "owned_by": "dryapi"}],
    }


if __name__ == "__main__":
    start(handler, preload=engines.load, logger=logger)
