"""RunPod handler for text to speech: ``handler(job)`` in the media dialect (design.md §6).

Input and output are documented in handlers/README.md ("Speech worker"). Failures come back as
``{"error": <JSON string of {"type", "code", "message", "param"}>}`` so the job ends FAILED with
a message the gateway can show. Text and audio are never logged: only lengths and durations.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from handlers.common.cancel import CancelToken, run_in_thread
from handlers.common.errors import HandlerError
from handlers.common.failures import unexpected_failure
from handlers.common.progress import throttled
from handlers.common.serve import start
from handlers.common.validation import parse_input
from handlers.speech import engine, output
from handlers.speech.reference import Reference, fetch_reference
from handlers.speech.schema import Limits, SpeechInput, check_input, output_format, output_rate

logger = logging.getLogger("handlers.speech")
_PROGRESS_INTERVAL_S = 0.5  # RunPod posts every update over HTTP


def _synthesize(job: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
    params = parse_input(job.get("input"), SpeechInput)
    limits = Limits.from_env()
    check_input(params, limits)  # before any model or fetch: bad input fails fast
    fmt = output_format(params.format, limits)
    family = engine.family_of(engine.model_id())
    engine.check_mode(family, params.mode)
    reference: Reference | None = None
    if params.mode == "voice_clone" and params.ref_audio:
        reference = fetch_reference(params.ref_audio, family.sample_rate)

    worker = engine.get_engine()
    request = engine.Synthesis(
        text=params.text,
        mode=params.mode,
        lang=params.lang,
        voice=params.voice,
        speed=params.speed or 1.0,
        instruct=params.instruct,
        reference=reference,
        ref_text=params.ref_text,
    )
    started = time.perf_counter()
    speech = worker.synthesize(request, throttled(job, _PROGRESS_INTERVAL_S), cancel)
    rate = output_rate(params, fmt, speech.sample_rate)
    blob = output.encode(speech.samples, speech.sample_rate, fmt, rate)
    duration = len(speech.samples) / speech.sample_rate
    elapsed = time.perf_counter() - started
    logger.info("synthesised %.1f s of audio in %.2f s (%d chunks, %s)", duration, elapsed, speech.chunks, fmt)
    result: dict[str, Any] = {
        "files": [output.deliver(str(job.get("id") or "local"), blob, fmt, limits.max_inline_bytes)],
        "duration_s": round(duration, 3),
        "sample_rate": rate,
        "channels": 1,
        "format": fmt,
        "model": params.model or worker.name,
        "usage": {"characters": len(params.text)},
    }
    if speech.voice is not None:
        result["voice"] = speech.voice
    ignored = [name for name in ("instruct", "ref_text", "ref_audio") if getattr(params, name) is not None]
    read = family.reads[params.mode]
    ignored = [name for name in ignored if name not in read or name in speech.unused]
    if ignored:
        result["ignored"] = ignored  # sent, but not read in this mode
    return result


async def handler(job: dict[str, Any]) -> dict[str, Any]:
    """Synthesise one job's text in a thread; a cancelled job stops before its next chunk."""
    try:
        return await run_in_thread(lambda cancel: _synthesize(job, cancel))
    except HandlerError as exc:
        return exc.to_output()
    except Exception as exc:  # never a traceback to the client
        return unexpected_failure(
            exc, logger, work="Speech synthesis", oom="Out of GPU memory while synthesising speech",
            code="synthesis_failed",
        )


if __name__ == "__main__":
    start(handler, preload=engine.get_engine, logger=logger)
