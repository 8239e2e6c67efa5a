"""app/tasks/media_sniff.py: formats from magic bytes, image sizes from real encoded files."""

from __future__ import annotations

import io
import math
import struct
import wave

import pytest
from PIL import Image

from app.tasks.media_sniff import image_size, sniff


def _encoded(fmt: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (10, 200, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "name", "mode"),
    [("PNG", "png", "RGB"), ("JPEG", "jpeg", "RGB"), ("GIF", "gif", "P"), ("BMP", "bmp", "RGB"),
     ("WEBP", "webp", "RGB"), ("WEBP", "webp", "RGBA")],
)
def test_images_and_their_sizes(fmt: str, name: str, mode: str) -> None:
    data = _encoded(fmt, (321, 123), mode)
    assert sniff(data[:64]) == name
    assert image_size(data) == (321, 123)


def test_lossless_webp_size() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (77, 55)).save(buffer, format="WEBP", lossless=True)
    assert image_size(buffer.getvalue()) == (77, 55)


def test_progressive_jpeg_size() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 360)).save(buffer, format="JPEG", progressive=True)
    assert image_size(buffer.getvalue()) == (640, 360)


def test_wav() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"".join(struct.pack("<h", int(1000 * math.sin(i / 5))) for i in range(800)))
    assert sniff(buffer.getvalue()[:64]) == "wav"


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"OggS\x00\x02", "ogg"),
        (b"ID3\x04\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64", "mp3"),
        (b"\xff\xf1\x50\x80", "aac"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "mp4"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "m4a"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "mov"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "webm"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "avi"),
        (b"\x00\x00\x01\xba\x44\x00", "mpeg"),
        (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9", "wmv"),
    ],
)
def test_audio_and_video_containers(head: bytes, name: str) -> None:
    assert sniff(head) == name


@pytest.mark.parametrize("head", [b"", b"hello world", b"%PDF-1.7", b"RIFF\x00\x00\x00\x00XXXX", b"\xff\xd8"])
def test_unknown_bytes(head: bytes) -> None:
    assert sniff(head) is None


@pytest.mark.parametrize(
    "data", [b"\x89PNG\r\n\x1a\n\x00", b"\xff\xd8\xff\xe0\x00\x10JFIF", b"GIF89a", b"not an image"]
)
def test_truncated_headers_have_no_size(data: bytes) -> None:
    assert image_size(data) is None
