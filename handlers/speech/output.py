"""Encoding synthesised samples into the requested format and handing the file back.

Everything happens in memory: PyAV muxes into a BytesIO. Inline results are base64 in the
media dialect's ``{"content_type", "data"}``; with a bucket configured (runpod's ``BUCKET_*``
variables) the file is uploaded and returned as ``{"content_type", "url"}``. RunPod drops a
result over its payload limit without a word, so inline results are capped.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

from handlers.common import bucket
from handlers.common.errors import HandlerError
from handlers.speech.schema import FORMATS

if TYPE_CHECKING:
    import numpy as np

_EXTENSIONS = {"opus": "ogg", "pcm": "pcm"}


def encode(samples: np.ndarray, source_rate: int, fmt: str, rate: int) -> bytes:
    """Mono float32 samples at ``source_rate`` -> file bytes in ``fmt`` at ``rate``."""
    import av
    import numpy as np

    spec = FORMATS[fmt]
    frame = av.AudioFrame.from_ndarray(
        np.clip(samples, -1.0, 1.0).astype(np.float32).reshape(1, -1), format="flt", layout="mono"
    )
    frame.sample_rate = source_rate
    frame.pts = 0
    if spec.container is None:  # raw PCM: resample and convert to s16, no container
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        frames = [*resampler.resample(frame), *resampler.resample(None)]
        return b"".join(bytes(out.planes[0])[: out.samples * 2] for out in frames)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=spec.container) as container:
        stream = container.add_stream(spec.codec, rate=rate, layout="mono")
        assert isinstance(stream, av.audio.stream.AudioStream)
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=rate)
        for out in [*resampler.resample(frame), *resampler.resample(None)]:
            out.pts = None  # the encoder numbers frames after it re-chunks them to its frame size
            container.mux(stream.encode(out))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def deliver(job_id: str, blob: bytes, fmt: str, max_inline_bytes: int) -> dict[str, Any]:
    """The media dialect's file entry: a bucket URL when configured, else capped inline base64."""
    content_type = FORMATS[fmt].content_type
    if bucket.configured():
        (url,) = bucket.upload(job_id, [(blob, _EXTENSIONS.get(fmt, fmt), content_type)], "the audio")
        return {"content_type": content_type, "url": url}
    data = base64.b64encode(blob).decode("ascii")
    if len(data) > max_inline_bytes:
        raise HandlerError(
            f"The audio is {len(data)} bytes as base64, over the inline limit of {max_inline_bytes} bytes "
            "(SPEECH_MAX_INLINE_BYTES); RunPod drops results that large. Configure a bucket "
            "(BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID, BUCKET_SECRET_ACCESS_KEY) to return a URL, "
            "or ask for less text or a compressed format (mp3, opus).",
            code="result_too_large",
        )
    return {"content_type": content_type, "data": data}
