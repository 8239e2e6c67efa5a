"""Recognising media formats from their first bytes, declared content type or file extension.

The check is deliberately loose: the decoder (PyAV, Pillow) is the final judge. Its job is to
refuse early and clearly what is plainly not the wanted kind (an HTML error page, a PNG
sent as audio), not to enumerate every codec a decoder can read.
"""

from __future__ import annotations

from typing import Literal

from handlers.common.errors import InvalidInput

MediaKind = Literal["audio", "video", "image"]

# fmt: off
_VIDEO = frozenset({"mp4", "webm", "avi", "mpegts", "asf", "mpeg"})
# Whisper reads the audio track of a video file, so "audio" accepts video containers too.
ALLOWED: dict[str, frozenset[str]] = {
    "audio": frozenset({"mp3", "wav", "flac", "ogg", "aac", "aiff", "amr", "caf"}) | _VIDEO,
    "video": _VIDEO,
    "image": frozenset({"png", "jpeg", "gif", "webp", "bmp", "tiff", "heic", "avif"}),
}

_EXTENSIONS: dict[str, str] = {
    "mp3": "mp3", "wav": "wav", "wave": "wav", "flac": "flac", "ogg": "ogg", "oga": "ogg", "opus": "ogg",
    "m4a": "mp4", "mp4": "mp4", "m4v": "mp4", "mov": "mp4", "3gp": "mp4", "aac": "aac", "webm": "webm",
    "mkv": "webm", "mka": "webm", "aif": "aiff", "aiff": "aiff", "amr": "amr", "caf": "caf", "wma": "asf",
    "wmv": "asf", "avi": "avi", "ts": "mpegts", "mpeg": "mpeg", "mpg": "mpeg", "mpga": "mp3",
    "png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "webp": "webp", "bmp": "bmp", "tif": "tiff",
    "tiff": "tiff", "heic": "heic", "avif": "avif",
    "html": "html", "htm": "html", "json": "json", "txt": "text", "xml": "xml", "svg": "svg", "pdf": "pdf",
}
_CONTENT_TYPES: dict[str, str] = {
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav",
    "audio/vnd.wave": "wav", "audio/flac": "flac", "audio/x-flac": "flac", "audio/ogg": "ogg",
    "audio/opus": "ogg", "audio/mp4": "mp4", "audio/m4a": "mp4", "audio/x-m4a": "mp4", "video/mp4": "mp4",
    "video/quicktime": "mp4", "audio/aac": "aac", "audio/webm": "webm", "video/webm": "webm",
    "video/x-matroska": "webm", "audio/aiff": "aiff", "audio/x-aiff": "aiff", "audio/amr": "amr",
    "image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp", "image/bmp": "bmp",
    "image/tiff": "tiff", "image/heic": "heic", "image/avif": "avif", "image/svg+xml": "svg",
    "text/html": "html", "application/json": "json", "text/plain": "text", "application/pdf": "pdf",
    "application/xml": "xml", "text/xml": "xml",
}
# fmt: on
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/unknown"})
_FTYP_IMAGE = {b"avif": "avif", b"avis": "avif", b"heic": "heic", b"heix": "heic", b"mif1": "heic"}


def sniff(data: bytes) -> str | None:
    """The format the first bytes announce, or None when they are not recognised."""
    head = data[:64]
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"WEBP", b"AVI "):
        return {b"WAVE": "wav", b"WEBP": "webp", b"AVI ": "avi"}[head[8:12]]
    if head[4:8] == b"ftyp":
        return _FTYP_IMAGE.get(head[8:12], "mp4")
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:
            return "aac"  # ADTS: 12-bit sync word, layer bits 00
        if head[1] & 0xE0 == 0xE0:
            return "mp3"  # MPEG audio frame sync without an ID3 tag
    if len(data) > 188 * 2 and data[0] == data[188] == data[376] == 0x47:
        return "mpegts"
    text = head.lstrip().lower()
    for prefix, name in _TEXT_PREFIXES:
        if text.startswith(prefix):
            return name
    return None


# fmt: off
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"ID3", "mp3"), (b"fLaC", "flac"), (b"OggS", "ogg"), (b"\x1a\x45\xdf\xa3", "webm"),
    (b"FORM", "aiff"), (b"#!AMR", "amr"), (b"caff", "caf"), (b"\x00\x00\x01\xba", "mpeg"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "asf"), (b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"), (b"GIF89a", "gif"), (b"BM", "bmp"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"),
    (b"%PDF", "pdf"), (b"PK\x03\x04", "zip"), (b"\x1f\x8b", "gzip"),
)
_TEXT_PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"<!doctype html", "html"), (b"<html", "html"), (b"<?xml", "xml"), (b"<svg", "svg"),
    (b"{", "json"), (b"[", "json"),
)
# fmt: on


def declared_format(content_type: str | None, name: str | None) -> str | None:
    """The format a content type or file name claims, or None when neither says anything."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in _GENERIC_TYPES:
        return _CONTENT_TYPES.get(media_type, media_type)
    if name and "." in name.rsplit("/", 1)[-1]:
        return _EXTENSIONS.get(name.rsplit(".", 1)[-1].lower())
    return None


def _matches_kind(declared: str, kind: MediaKind) -> bool:
    if declared in ALLOWED[kind]:
        return True
    # An unlisted but plausible type (audio/x-ms-wma for audio): let the decoder decide.
    main = declared.split("/")[0] if "/" in declared else ""
    wanted = {"audio": ("audio", "video"), "video": ("video",), "image": ("image",)}[kind]
    return main in wanted and declared != "image/svg+xml"


def check_format(
    data: bytes, kind: MediaKind, param: str, *, content_type: str | None = None, name: str | None = None
) -> str | None:
    """Return the recognised format, or raise ``InvalidInput`` when ``data`` is plainly not ``kind``.

    Magic bytes decide when they are recognised; otherwise a declared content type or file
    extension may refuse the data (``text/html``) or vouch for it. Undeclared, unrecognised
    data passes: the decoder will name the field if it cannot read it.
    """
    if not data:
        raise InvalidInput(param, f"{param} is empty", code="invalid_media")
    allowed = ", ".join(sorted(ALLOWED[kind]))
    found = sniff(data)
    if found is not None:
        if found in ALLOWED[kind]:
            return found
        raise InvalidInput(
            param, f"{param} is {found} data, not an allowed {kind} format ({allowed})", code="unsupported_format"
        )
    declared = declared_format(content_type, name)
    if declared is None or _matches_kind(declared, kind):
        return declared if declared in ALLOWED[kind] else None
    raise InvalidInput(
        param, f"{param} is declared as {declared}, not an allowed {kind} format ({allowed})", code="unsupported_format"
    )
