"""RunPod handler for speech-to-text: ``handler(job)`` in the worker-faster_whisper dialect.

Input and output are documented in handlers/README.md. Failures come back as
``{"error": <JSON string of {"type", "code", "message", "param"}>}`` so the job ends FAILED with a message
the gateway can show. Audio and transcripts are never logged: only durations and counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from handlers.common.cancel import CancelToken, run_in_thread
from handlers.common.errors import HandlerError
from handlers.common.failures import unexpected_failure
from handlers.common.progress import report_progress
from handlers.common.serve import start
from handlers.transcribe import audio, engine, source
from handlers.transcribe.output import render_text, segment_dicts, word_dicts
from handlers.transcribe.platforms import PARAM as SOURCE_PARAM
from handlers.transcribe.platforms import check_link
from handlers.transcribe.schema import TranscribeInput, fallback_temperatures, parse, suppress_token_ids

logger = logging.getLogger("handlers.transcribe")
_PROGRESS_INTERVAL_S = 0.5  # RunPod posts every update over HTTP; long files have 1000s of segments


def _progress(job: dict[str, Any], start: float, span: float, cancel: CancelToken) -> Callable[[float], None]:
    """Report ``start + span * done`` percent, at most every ``_PROGRESS_INTERVAL_S``; called
    per segment, it is also where a cancelled job stops."""
    last = -_PROGRESS_INTERVAL_S

    def report(done: float) -> None:
        nonlocal last
        cancel.check()
        now = time.monotonic()
        if now - last >= _PROGRESS_INTERVAL_S or done >= 1.0:
            last = now
            report_progress(job, start + span * done)

    return report


def decoding_options(params: TranscribeInput) -> dict[str, Any]:
    """faster-whisper ``transcribe`` keyword arguments, mapped as the stock worker maps them."""
    options: dict[str, Any] = {
        "language": params.language,
        "beam_size": params.beam_size,
        "best_of": params.best_of,
        "patience": params.patience,
        "temperature": fallback_temperatures(params.temperature, params.temperature_increment_on_fallback),
        "compression_ratio_threshold": params.compression_ratio_threshold,
        "log_prob_threshold": params.logprob_threshold,
        "no_speech_threshold": params.no_speech_threshold,
        "condition_on_previous_text": params.condition_on_previous_text,
        "initial_prompt": params.initial_prompt,
        "suppress_tokens": suppress_token_ids(params.suppress_tokens),
        "word_timestamps": params.word_timestamps,
        "vad_filter": params.enable_vad,
    }
    if params.length_penalty is not None:
        options["length_penalty"] = params.length_penalty
    return options


def _samples(params: TranscribeInput, job: dict[str, Any], cancel: CancelToken) -> tuple[Any, float]:
    """The job's audio, and where transcription progress starts: a platform link reports 0 %
    while it downloads and 50 % once it has (the seeds' reference §3.13); other audio 0 %."""
    if params.source_url is None:
        return audio.load(params), 0.0
    link = check_link(params.source_url)
    report_progress(job, 0.0)
    samples = source.download(link, cancel, lambda path: audio.decode(str(path), SOURCE_PARAM, link.max_duration_s))
    report_progress(job, 50.0)
    return samples, 50.0


def _transcribe(job: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
    params = parse(job.get("input"))
    samples, start = _samples(params, job, cancel)  # bad audio fails before the model loads
    loaded = engine.get_model(engine.choose_model(params.model))
    options = decoding_options(params)
    span = 100.0 - start
    share = span / 2 if params.translate else span  # with translate, each pass is half the work
    started = time.perf_counter()

    progress = _progress(job, start, share, cancel)
    result = engine.transcribe(loaded, samples, {**options, "task": "transcribe"}, progress)
    segments = segment_dicts(result.segments, result.duration)
    output: dict[str, Any] = {
        "segments": segments,
        "detected_language": result.language,
        "transcription": render_text(segments, params.transcription, include_ts=params.include_ts),
        "translation": None,
        "device": loaded.device,
        "model": loaded.label,
        "duration": round(result.duration, 3),  # seconds of audio: what native jobs are billed on
    }
    if params.word_timestamps:
        output["word_timestamps"] = word_dicts(result.segments, result.duration)
    if params.translate:
        translated = engine.transcribe(
            loaded,
            samples,
            {**options, "task": "translate", "word_timestamps": False},
            _progress(job, start + share, share, cancel),
        )
        translated_segments = segment_dicts(translated.segments, translated.duration)
        output["translation"] = render_text(translated_segments, params.translation, include_ts=params.include_ts)
    logger.info(
        "transcribed %.1f s of audio in %.2f s (%s on %s, %d segments)",
        result.duration,
        time.perf_counter() - started,
        loaded.label,
        loaded.device,
        len(segments),
    )
    return output


async def handler(job: dict[str, Any]) -> dict[str, Any]:
    """Transcribe one job's audio in a thread; a cancelled job stops at the next segment."""
    try:
        return await run_in_thread(lambda cancel: _transcribe(job, cancel))
    except HandlerError as exc:
        return exc.to_output()
    except Exception as exc:  # never a traceback to the client
        return unexpected_failure(
            exc, logger, work="Transcription", oom="Out of GPU memory while transcribing",
            code="transcription_failed",
        )


if __name__ == "__main__":
    start(handler, preload=engine.get_model, logger=logger)
