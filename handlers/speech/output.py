"""Encoding synthesised speech into the requested format and handing the file back.

The work is shared with the music worker (``handlers/common/audio.py``: PyAV in memory,
bucket URL or capped inline base64); this module names the speech worker's formats and
its inline-cap setting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.common import audio
from handlers.speech.schema import FORMATS

if TYPE_CHECKING:
    import numpy as np


def encode(samples: np.ndarray, source_rate: int, fmt: str, rate: int) -> bytes:
    """Mono float32 samples at ``source_rate`` -> file bytes in ``fmt`` at ``rate``."""
    return audio.encode(samples, source_rate, FORMATS[fmt], rate)


def deliver(job_id: str, blob: bytes, fmt: str, max_inline_bytes: int) -> dict[str, Any]:
    """The media dialect's file entry: a bucket URL when configured, else capped inline base64."""
    return audio.deliver(
        job_id, blob, FORMATS[fmt], fmt, max_inline_bytes,
        setting="SPEECH_MAX_INLINE_BYTES", advice="ask for less text or a compressed format (mp3, opus)",
    )  # fmt: skip
