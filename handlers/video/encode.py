"""Frames to an H.264 MP4 in memory with PyAV (the ffmpeg libraries its wheels bundle).

yuv420p, the pixel format every browser and phone decodes. Nothing touches the disk, which
rules out ``movflags=+faststart`` (ffmpeg re-reads the finished file by name to move the
index forward); players fetch the index from the end with a range request instead.
"""

from __future__ import annotations

import io
import os
from typing import Any

_DEFAULT_CRF = 18  # visually lossless for generated content at a few MB per 5 s of 768x512
_DEFAULT_PRESET = "medium"


def mp4(frames: Any, fps: int) -> bytes:
    """``frames`` uint8 ``(n, height, width, 3)`` -> MP4 bytes at ``fps``."""
    import av

    count, height, width = int(frames.shape[0]), int(frames.shape[1]), int(frames.shape[2])
    even_h, even_w = height - height % 2, width - width % 2  # 4:2:0 chroma needs even sides
    crf = os.environ.get("VIDEO_CRF", "").strip() or str(_DEFAULT_CRF)
    preset = os.environ.get("VIDEO_X264_PRESET", "").strip() or _DEFAULT_PRESET
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = even_w, even_h
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": crf, "preset": preset}
        for index in range(count):
            image = frames[index, :even_h, :even_w]
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()
