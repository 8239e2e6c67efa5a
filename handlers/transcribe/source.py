"""Downloading a platform link's audio with yt-dlp into a per-job temporary directory.

yt-dlp picks an audio-only format when the site offers one (``bestaudio/best``); no
post-processing, so no ffmpeg binary: PyAV decodes whatever container arrives. The
directory is deleted when the job ends, whatever happens. Refused before the download:
live, upcoming or still-processing streams (a Space that has not ended), playlists, and
a stated duration over the link's cap; while downloading: more than the size cap.

SSRF: every request yt-dlp makes goes through ``YoutubeDL.urlopen`` (extractor API calls,
media, HLS/DASH fragments), which ``_CheckedYoutubeDL`` overrides to apply the one address
rule (``handlers.common.addresses``) to the request's host before connecting, and to the
final URL of the response (after redirects) before a byte of the body is read. Redirect
hops themselves are followed inside yt-dlp's HTTP stack and are not checked one by one, and
the address is resolved again by that stack (no pinning as in handlers.common.media).
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from handlers.common.addresses import is_public_address
from handlers.common.cancel import CancelToken, JobCancelled
from handlers.common.errors import HandlerError, InvalidInput
from handlers.common.media import allowlist_from_env
from handlers.transcribe.platforms import PARAM, Link

MB = 1024 * 1024
DEFAULT_MAX_MB = 1024  # 600 min of 128 kbit/s audio is ~550 MB
_NOT_FINISHED = {"is_live": "is live", "is_upcoming": "has not started", "post_live": "is still being processed"}


def max_bytes() -> int:
    raw = os.environ.get("TRANSCRIBE_LINK_MAX_MB", "").strip()
    return int(float(raw) * MB) if raw else DEFAULT_MAX_MB * MB


class _Refused(Exception):
    """A request to an address the worker must not reach (raised inside yt-dlp)."""


def check_address(url: str, allowlist: frozenset[str]) -> None:
    """Raise ``_Refused`` unless ``url`` is http(s) to an allowlisted or public host."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise _Refused
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if host in allowlist or f"{host}:{port}" in allowlist:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise _Refused from None
    if not infos or not all(is_public_address(str(info[4][0])) for info in infos):
        raise _Refused


def _downloader(options: dict[str, Any]) -> Any:
    import yt_dlp

    class _CheckedYoutubeDL(yt_dlp.YoutubeDL):  # type: ignore[misc]
        """YoutubeDL whose every HTTP request passes the worker's address rule."""

        allowlist = allowlist_from_env()

        def urlopen(self, req: Any) -> Any:
            check_address(req if isinstance(req, str) else req.url, self.allowlist)
            response = super().urlopen(req)
            try:
                check_address(response.url, self.allowlist)  # where redirects ended up
            except _Refused:
                response.close()
                raise
            return response

    return _CheckedYoutubeDL(options)


class _Silent:
    """yt-dlp's logger: nothing (its lines quote URLs and titles)."""

    def debug(self, msg: str) -> None:
        return

    info = warning = error = debug


class _Watch:
    """yt-dlp progress hook: the cancel check and the size cap while bytes arrive."""

    def __init__(self, cancel: CancelToken, limit: int) -> None:
        self.cancel = cancel
        self.limit = limit
        self.too_large = False

    def __call__(self, status: dict[str, Any]) -> None:
        self.cancel.check()
        done = status.get("downloaded_bytes") or 0
        if done > self.limit:
            self.too_large = True
            raise HandlerError("download over the size cap")  # ends yt-dlp's download loop


def _refuse_unfinished(info: dict[str, Any], link: Link) -> None:
    if info.get("_type") in ("playlist", "multi_video"):
        raise InvalidInput(PARAM, "The source_url is a playlist; send a link to one video.", code="unsupported_link")
    status = str(info.get("live_status") or ("is_live" if info.get("is_live") else ""))
    if status in _NOT_FINISHED:
        raise InvalidInput(
            PARAM,
            f"The stream {_NOT_FINISHED[status]}; only finished recordings can be transcribed.",
            code="stream_not_finished",
        )
    duration = info.get("duration")
    if isinstance(duration, int | float) and duration > link.max_duration_s:
        raise InvalidInput(
            PARAM,
            f"The media lasts {duration / 60:.0f} minutes; this link type is limited to "
            f"{link.max_duration_s / 60:g} minutes.",
            code="audio_too_long",
        )


def download(link: Link, cancel: CancelToken, use: Callable[[Path], Any]) -> Any:
    """Download ``link``'s audio into a temporary directory and return ``use(path)``; the
    directory is gone when this returns or raises."""
    limit = max_bytes()
    watch = _Watch(cancel, limit)
    with tempfile.TemporaryDirectory(prefix="transcribe-") as folder:
        options: dict[str, Any] = {
            "format": "bestaudio/best",  # audio-only when offered; else the smallest full file is not guessed
            "outtmpl": {"default": os.path.join(folder, "media.%(ext)s")},
            "paths": {"home": folder, "temp": folder},
            "noplaylist": True,
            "max_filesize": limit,
            "socket_timeout": float(os.environ.get("MEDIA_FETCH_READ_TIMEOUT_S", "").strip() or 30),
            "retries": 2,
            "fragment_retries": 2,
            "quiet": True,
            "no_warnings": True,
            "noprogress": True,
            "logger": _Silent(),
            "progress_hooks": [watch],
            "cachedir": False,
            "noresizebuffer": True,
            "overwrites": True,
            "hls_prefer_native": True,  # no ffmpeg binary in the image
        }
        try:
            with _downloader(options) as ydl:
                info = ydl.extract_info(link.url, download=False)
                cancel.check()
                _refuse_unfinished(info, link)
                info = ydl.process_ie_result(info, download=True)
        except (HandlerError, JobCancelled):
            raise
        except Exception as exc:
            raise _failure(exc, watch, cancel) from None
        files = [Path(entry["filepath"]) for entry in info.get("requested_downloads") or () if entry.get("filepath")]
        files = [path for path in files if path.is_file()]
        if not files:  # yt-dlp skips (without raising) a file whose stated size is over max_filesize
            raise _too_large(limit)
        return use(files[0])


def _too_large(limit: int) -> InvalidInput:
    message = f"The media is larger than the {limit / MB:g} MB download limit."
    return InvalidInput(PARAM, message, code="media_too_large")


def _failure(exc: Exception, watch: _Watch, cancel: CancelToken) -> Exception:
    """The contract error for what went wrong inside yt-dlp (which wraps what hooks raise)."""
    if cancel.cancelled:
        return JobCancelled()
    if watch.too_large:
        return _too_large(watch.limit)
    if any(isinstance(item, _Refused) for item in _causes(exc)):
        return InvalidInput(
            PARAM, "The source_url leads to a private or reserved network address, which is not allowed.",
            code="url_not_allowed",
        )
    name = type(exc).__name__
    if name in ("UnsupportedError", "ExtractorError", "DownloadError"):
        # yt-dlp's message can quote the page; only its kind is passed on.
        message = "The media at source_url could not be found or downloaded."
        return InvalidInput(PARAM, message, code="media_fetch_failed")
    return HandlerError(f"Downloading source_url failed ({name})", code="media_fetch_failed", param=PARAM)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: yt-dlp keeps the original in ``exc_info`` or ``cause``."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 20:
        chain.append(current)
        info = getattr(current, "exc_info", None)
        nested = info[1] if isinstance(info, tuple) and len(info) > 1 else None
        wrapped = getattr(current, "cause", None)
        for candidate in (nested, wrapped, current.__cause__, current.__context__):
            if isinstance(candidate, BaseException) and candidate not in chain:
                current = candidate
                break
        else:
            current = None
    return chain
