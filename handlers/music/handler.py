"""RunPod handler for text to music: ``handler(job)`` in the media dialect (design.md §6).

Input and output are documented in handlers/README.md ("Music worker"). Failures come back as
``{"error": <JSON string of {"type", "code", "message", "param"}>}`` so the job ends FAILED with
a message the gateway can show. Captions, lyrics and audio are never logged: only durations.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from handlers.common import audio
from handlers.common.cancel import CancelToken, run_in_thread
from handlers.common.errors import HandlerError, InvalidInput
from handlers.common.failures import unexpected_failure
from handlers.common.media import MB, fetch_media
from handlers.common.progress import throttled
from handlers.common.serve import start
from handlers.common.validation import parse_input
from handlers.music import engine
from handlers.music.schema import FORMATS, Limits, MusicInput, check_input, output_format

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger("handlers.music")
_PROGRESS_INTERVAL_S = 0.5  # RunPod posts every update over HTTP (MUSIC_PROGRESS_INTERVAL_S)
REFERENCE_PARAM = "reference_audio"
REFERENCE_MAX_BYTES = 10 * MB  # the gateway's cap (app/tasks/music.py)
MIN_REFERENCE_S = 1.0


def _compose(job: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
    params = parse_input(job.get("input"), MusicInput)
    limits = Limits.from_env()
    check_input(params, limits)  # before any model or fetch: bad input fails fast
    fmt = output_format(params.format, limits)
    ignored = engine.check_request(engine.family_of(engine.model_id()), params)

    worker = engine.get_engine()
    reference = None
    if params.reference_audio is not None:
        reference = fetch_reference(params.reference_audio, worker.sample_rate, worker.channels, limits)
    request = engine.Composition(
        caption=params.caption.strip(),
        duration=params.duration,
        seed=params.seed if params.seed is not None else _random_seed(),
        steps=params.inference_steps,
        guidance_scale=params.guidance_scale,
        lyrics=params.lyrics.strip() if params.lyrics and params.sung else "[Instrumental]",
        bpm=params.bpm,
        keyscale=params.keyscale.strip() if params.keyscale and params.keyscale.strip() else None,
        timesignature=params.timesignature,
        vocal_language=(params.vocal_language or "en").strip() or "en",
        reference=reference,
    )
    started = time.perf_counter()
    music = worker.compose(request, _progress(job), cancel)
    channels, count = music.samples.shape
    blob = audio.encode(music.samples, music.sample_rate, FORMATS[fmt], music.sample_rate)
    duration = count / music.sample_rate
    elapsed = time.perf_counter() - started
    logger.info("composed %.1f s of music in %.2f s (%d steps, %s)", duration, elapsed, music.steps, fmt)
    advice = "ask for a shorter duration or a compressed format (mp3, flac)"
    file = audio.deliver(
        str(job.get("id") or "local"), blob, FORMATS[fmt], fmt, limits.max_inline_bytes,
        setting="MUSIC_MAX_INLINE_BYTES", advice=advice,
    )  # fmt: skip
    result: dict[str, Any] = {
        "files": [file],
        "duration_s": round(duration, 3),
        "sample_rate": music.sample_rate,
        "channels": channels,
        "format": fmt,
        "seed": request.seed,
        "model": params.model or worker.name,
        "usage": {"seconds": round(duration, 3), "inference_steps": music.steps},
    }
    ignored += music.ignored
    if ignored:
        result["ignored"] = ignored  # sent, but this model has no use for them
    return result


def fetch_reference(url: str, rate: int, channels: int, limits: Limits) -> np.ndarray:
    """The style reference: fetched into memory (SSRF rules, size cap), decoded at the engine's
    rate and channel count, and held to 1 s .. ``MUSIC_MAX_REFERENCE_S``."""
    media = fetch_media(url, "audio", REFERENCE_PARAM, limit=REFERENCE_MAX_BYTES)
    samples = audio.decode(
        media.data, rate=rate, channels=channels, param=REFERENCE_PARAM, max_seconds=limits.max_reference_s + 1
    )
    seconds = samples.shape[1] / rate
    if seconds < MIN_REFERENCE_S:
        raise InvalidInput(
            REFERENCE_PARAM, f"reference_audio is {seconds:.1f} s long; send at least 1 s", code="audio_too_short"
        )
    if seconds > limits.max_reference_s + 0.05:  # container rounding
        raise InvalidInput(
            REFERENCE_PARAM,
            f"reference_audio is longer than {limits.max_reference_s:g} s",
            code="audio_too_long",
        )
    return samples


def _random_seed() -> int:
    import secrets

    return secrets.randbelow(2**32)  # the gateway always sends one; direct callers may not


def _progress(job: dict[str, Any]) -> Callable[[float], None]:
    raw = os.environ.get("MUSIC_PROGRESS_INTERVAL_S", "").strip()
    return throttled(job, float(raw) if raw else _PROGRESS_INTERVAL_S)


async def handler(job: dict[str, Any]) -> dict[str, Any]:
    """Compose one job's music in a thread; a cancelled job stops after its current step."""
    try:
        return await run_in_thread(lambda cancel: _compose(job, cancel))
    except HandlerError as exc:
        return exc.to_output()
    except Exception as exc:  # never a traceback to the client
        return unexpected_failure(
            exc, logger, work="Music generation", oom="Out of GPU memory while composing music",
            code="generation_failed",
        )


if __name__ == "__main__":
    start(handler, preload=engine.get_engine, logger=logger)
