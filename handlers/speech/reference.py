"""The voice_clone reference clip: fetched by URL into memory, decoded, and held to 3-10 s.

The seeds take a 3-10 s sample of the voice to clone. The URL is fetched by
``handlers.common.media`` (SSRF rule, size cap) and decoded from memory by PyAV; nothing is
written to disk. Errors name ``ref_audio``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from handlers.common import audio
from handlers.common.errors import InvalidInput
from handlers.common.media import MB, fetch_media
from handlers.speech.schema import MAX_REF_S, MIN_REF_S

if TYPE_CHECKING:
    import numpy as np

PARAM = "ref_audio"
MAX_BYTES = 10 * MB  # the gateway's cap for voice uploads (app/tasks/speech.py)


@dataclass(frozen=True)
class Reference:
    samples: np.ndarray  # mono float32 in [-1, 1]
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def fetch_reference(url: str, sample_rate: int) -> Reference:
    media = fetch_media(url, "audio", PARAM, limit=MAX_BYTES)
    return decode_reference(media.data, sample_rate)


def decode_reference(data: bytes, sample_rate: int) -> Reference:
    """Decode to mono float32 at ``sample_rate``; refuse what is not 3-10 s of audio."""
    samples = _decode(data, sample_rate)
    duration = len(samples) / sample_rate
    if duration < MIN_REF_S:
        raise InvalidInput(
            PARAM, f"ref_audio is {duration:.1f} s long; send {MIN_REF_S:g}-{MAX_REF_S:g} s", code="audio_too_short"
        )
    if duration > MAX_REF_S + 0.05:  # container rounding
        raise InvalidInput(
            PARAM, f"ref_audio is {duration:.1f} s long; send {MIN_REF_S:g}-{MAX_REF_S:g} s", code="audio_too_long"
        )
    return Reference(samples, sample_rate)


def _decode(data: bytes, sample_rate: int) -> np.ndarray:
    # Decoding stops a second past the longest clip allowed: a long file is refused without reading it all.
    return audio.decode(data, rate=sample_rate, channels=1, param=PARAM, max_seconds=MAX_REF_S + 1).reshape(-1)
