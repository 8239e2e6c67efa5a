"""What the engines share: text cut into model calls, the calls run with progress and cancel
points, the device, and the ``speed`` the generative models (Chatterbox, Qwen3-TTS) lack.

Kokoro reads ``speed`` itself (it scales phoneme durations); Chatterbox and Qwen3-TTS have no
such input, so their audio is time-stretched afterwards (librosa's phase vocoder keeps the
pitch). Nothing here imports torch or librosa until it is called.
"""

from __future__ import annotations

import io
import os
import wave
from collections.abc import Callable
from typing import TYPE_CHECKING

from handlers.common.cancel import CancelToken
from handlers.speech import text as splitting

if TYPE_CHECKING:
    import numpy as np

CHUNK_CHARS = 300  # characters of text per model call
SPEED_TOLERANCE = 1e-3  # closer to 1.0 than this: the audio is left untouched


def chunk_chars() -> int:
    """Characters per model call (``SPEECH_CHUNK_CHARS``): smaller gives earlier progress and
    cancel points, larger gives fewer seams."""
    raw = os.environ.get("SPEECH_CHUNK_CHARS", "").strip()
    return max(1, int(raw)) if raw.isdigit() else CHUNK_CHARS


def plan(text: str) -> list[str]:
    """The text as model calls: whole sentences packed up to ``chunk_chars()`` characters."""
    limit = chunk_chars()
    return [piece for piece in splitting.chunks(text, lambda s: len(s) <= limit) if piece.strip()]


def run_calls(
    pieces: list[str],
    speak: Callable[[str], np.ndarray],
    on_progress: Callable[[float], None],
    cancel: CancelToken,
) -> np.ndarray:
    """``speak`` each piece in order; progress up to 95 % by characters done, a cancel check
    before each call. Returns the pieces' audio joined (mono float32)."""
    import numpy as np

    total = sum(len(piece) for piece in pieces) or 1
    done = 0
    audio: list[np.ndarray] = []
    for piece in pieces:
        cancel.check()
        audio.append(np.asarray(speak(piece), dtype=np.float32).reshape(-1))
        done += len(piece)
        on_progress(95.0 * done / total)
    return np.concatenate(audio) if audio else np.zeros(0, dtype=np.float32)


def apply_speed(samples: np.ndarray, speed: float) -> np.ndarray:
    """``samples`` played ``speed`` times faster at the same pitch (0.5-2.0)."""
    if abs(speed - 1.0) < SPEED_TOLERANCE or samples.size == 0:
        return samples
    import librosa
    import numpy as np

    stretched = librosa.effects.time_stretch(samples.astype(np.float32), rate=speed)
    return np.asarray(stretched, dtype=np.float32)


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Mono float samples in [-1, 1] as a 16-bit PCM WAV file, in memory (for APIs that read a file)."""
    import numpy as np

    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def choose_device() -> str:
    """``SPEECH_DEVICE``, else ``cuda`` when torch sees one, else ``cpu``."""
    import torch

    wanted = os.environ.get("SPEECH_DEVICE", "").strip().lower()
    if wanted and wanted != "auto":
        return wanted
    return "cuda" if torch.cuda.is_available() else "cpu"


def env_float(name: str, default: float, low: float, high: float) -> float:
    """A float setting within [low, high]; a bad value is a configuration error, not a silent default."""
    from handlers.common.errors import HandlerError

    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise HandlerError(f"{name} must be a number between {low:g} and {high:g}", code="bad_configuration")
    return value
