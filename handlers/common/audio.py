"""Audio in memory for the media-dialect workers (speech, music): decode an upload, encode a result,
hand the file back.

PyAV reads from and muxes into a BytesIO, so nothing touches the disk. Inline results are base64
in the media dialect's ``{"content_type", "data"}``; with a bucket configured (runpod's
``BUCKET_*`` variables) the file is uploaded and returned as ``{"content_type", "url"}``. RunPod
drops a result over its payload limit without a word, so inline results are capped.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handlers.common import bucket
from handlers.common.errors import HandlerError, InvalidInput

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class AudioFormat:
    container: str | None  # PyAV muxer; None for raw PCM
    codec: str
    content_type: str
    rates: frozenset[int] | None  # sample rates the encoder takes; None: any
    fixed_rate: int | None = None  # the only rate the format plays at (and the default)
    extension: str | None = None  # file extension when it differs from the format's name


MP3_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
MP3 = AudioFormat("mp3", "libmp3lame", "audio/mpeg", MP3_RATES)
WAV = AudioFormat("wav", "pcm_s16le", "audio/wav", None)
FLAC = AudioFormat("flac", "flac", "audio/flac", None)
_LAYOUTS = {1: "mono", 2: "stereo"}


def _layout(channels: int) -> str:
    if channels not in _LAYOUTS:
        raise ValueError(f"{channels} audio channels; 1 or 2 are supported")
    return _LAYOUTS[channels]


def encode(samples: np.ndarray, source_rate: int, spec: AudioFormat, rate: int) -> bytes:
    """Float32 samples (``(n,)`` mono or ``(channels, n)``) at ``source_rate`` -> file bytes at ``rate``."""
    import av
    import numpy as np

    planar = np.clip(samples, -1.0, 1.0).astype(np.float32).reshape(-1, samples.shape[-1])
    layout = _layout(planar.shape[0])
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar), format="fltp", layout=layout)
    frame.sample_rate = source_rate
    frame.pts = 0
    if spec.container is None:  # raw PCM: resample and convert to interleaved s16, no container
        resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
        frames = [*resampler.resample(frame), *resampler.resample(None)]
        width = 2 * planar.shape[0]
        return b"".join(bytes(out.planes[0])[: out.samples * width] for out in frames)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=spec.container) as container:
        stream = container.add_stream(spec.codec, rate=rate, layout=layout)
        assert isinstance(stream, av.audio.stream.AudioStream)
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=rate)
        for out in [*resampler.resample(frame), *resampler.resample(None)]:
            out.pts = None  # the encoder numbers frames after it re-chunks them to its frame size
            container.mux(stream.encode(out))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def decode(data: bytes, *, rate: int, channels: int, param: str, max_seconds: float) -> np.ndarray:
    """Decode a file to float32 ``(channels, n)`` at ``rate``; decoding stops past ``max_seconds``
    (the caller judges the length). Undecodable data is an ``InvalidInput`` naming ``param``."""
    import av
    import numpy as np

    layout = _layout(channels)
    limit = int(max_seconds * rate)
    pieces: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pieces.append(out.to_ndarray().reshape(channels, -1))
                    total += pieces[-1].shape[1]
                if total > limit:
                    break
            else:
                pieces += [out.to_ndarray().reshape(channels, -1) for out in resampler.resample(None)]
    except (IndexError, av.FFmpegError, ValueError):
        raise InvalidInput(
            param, f"{param} could not be decoded as audio (send wav, mp3, flac, ogg or m4a)", code="invalid_audio"
        ) from None
    if not pieces or total == 0:
        raise InvalidInput(param, f"{param} contains no audio samples", code="invalid_audio")
    return np.concatenate(pieces, axis=1).astype(np.float32)


def deliver(
    job_id: str, blob: bytes, spec: AudioFormat, extension: str, max_inline_bytes: int, *, setting: str, advice: str
) -> dict[str, Any]:
    """The media dialect's file entry: a bucket URL when configured, else capped inline base64.

    ``setting`` names the env variable holding the cap and ``advice`` how to ask for less,
    both for the error a too-large inline result gets."""
    if bucket.configured():
        (url,) = bucket.upload(job_id, [(blob, spec.extension or extension, spec.content_type)], "the audio")
        return {"content_type": spec.content_type, "url": url}
    data = base64.b64encode(blob).decode("ascii")
    if len(data) > max_inline_bytes:
        raise HandlerError(
            f"The audio is {len(data)} bytes as base64, over the inline limit of {max_inline_bytes} bytes "
            f"({setting}); RunPod drops results that large. Configure a bucket "
            "(BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID, BUCKET_SECRET_ACCESS_KEY) to return a URL, "
            f"or {advice}.",
            code="result_too_large",
        )
    return {"content_type": spec.content_type, "data": data}
