"""Getting a job's audio into a 16 kHz float32 array without touching the disk.

The bytes come from ``audio`` (a URL, fetched by handlers.common.media with its SSRF and
size rules) or ``audio_base64``; PyAV decodes them from a BytesIO, so any container and
codec ffmpeg reads works (wav, mp3, flac, ogg/opus, m4a, webm, the audio track of mp4...).
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING

from handlers.common.errors import InvalidInput
from handlers.common.media import decode_base64_media, fetch_media
from handlers.transcribe.schema import TranscribeInput

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 16_000
DEFAULT_MAX_DURATION_S = 4 * 3600.0


def max_duration_s() -> float:
    raw = os.environ.get("TRANSCRIBE_MAX_DURATION_S", "").strip()
    return float(raw) if raw else DEFAULT_MAX_DURATION_S


def load(params: TranscribeInput) -> np.ndarray:
    """The job's audio as samples; errors name ``audio`` or ``audio_base64``."""
    if params.audio is not None:
        return decode(fetch_media(params.audio, "audio", "audio").data, "audio")
    return decode(decode_base64_media(params.audio_base64, "audio", "audio_base64").data, "audio_base64")


def decode(data: bytes | str, param: str, limit: float | None = None) -> np.ndarray:
    """Decode ``data`` (bytes, or the path of a downloaded file) and resample to mono 16 kHz,
    refusing undecodable or over-long audio (``limit`` seconds, default the env's)."""
    from faster_whisper import decode_audio

    limit = limit or max_duration_s()
    declared = _declared_duration(data)
    if declared is not None and declared > limit:
        raise _too_long(param, limit)  # refused before decoding: a small file can hold hours
    try:
        source = io.BytesIO(data) if isinstance(data, bytes) else data
        samples: np.ndarray = decode_audio(source, sampling_rate=SAMPLE_RATE)
    except Exception:  # PyAV raises many types; the client's file is the cause
        raise InvalidInput(
            param,
            f"{param} could not be decoded as audio (send wav, mp3, flac, ogg, m4a, webm...)",
            code="invalid_audio",
        ) from None
    if samples.size == 0:
        raise InvalidInput(param, f"{param} contains no audio samples", code="invalid_audio")
    if samples.size / SAMPLE_RATE > limit:
        raise _too_long(param, limit)
    return samples


def _declared_duration(data: bytes | str) -> float | None:
    """The container's stated duration in seconds, if it states one (decoding decides the rest)."""
    import av

    try:
        source = io.BytesIO(data) if isinstance(data, bytes) else data
        with av.open(source, mode="r", metadata_errors="ignore") as container:
            return container.duration / 1_000_000 if container.duration else None
    except Exception:  # probing only; decode() reports unreadable files
        return None


def _too_long(param: str, limit: float) -> InvalidInput:
    return InvalidInput(param, f"{param} is longer than the {limit:g} s this worker accepts", code="audio_too_long")
