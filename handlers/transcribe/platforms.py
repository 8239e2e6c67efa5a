"""Which ``source_url`` links the worker downloads, judged by the URL's shape alone.

The same platforms as the gateway's check (app/tasks/platforms.py; the worker image has no
``app`` package): https pages of YouTube, TikTok, Twitch, Kick and X. An X Space
(``/i/spaces/<id>``) is capped at 90 minutes, every other link at 600 (the seeds' limits).
A host in ``MEDIA_FETCH_ALLOWLIST`` is also accepted, over http or https, with yt-dlp's
generic extractor: the operator's own media server (and the tests' loopback server).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from handlers.common.errors import InvalidInput
from handlers.common.media import allowlist_from_env

PARAM = "source_url"
MAX_URL_LENGTH = 2048
VIDEO_LINK_MAX_S = 600 * 60.0
SPACE_MAX_S = 90 * 60.0
_HOSTS = {
    "youtube.com": "youtube", "youtu.be": "youtube", "tiktok.com": "tiktok", "twitch.tv": "twitch",
    "kick.com": "kick", "x.com": "x", "twitter.com": "x",
}
_SPACE_PATH = re.compile(r"^/i/spaces/[A-Za-z0-9]+/?$")


@dataclass(frozen=True)
class Link:
    url: str
    platform: str  # youtube, tiktok, twitch, kick, x, x-space, or "allowlisted"
    max_duration_s: float


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _platform(host: str) -> str | None:
    for domain, platform in _HOSTS.items():
        if host == domain or host.endswith("." + domain):
            return platform
    return None


def check_link(url: str) -> Link:
    """The link's platform and duration cap, or ``InvalidInput`` naming ``source_url``."""
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(PARAM, f"The source_url is longer than {MAX_URL_LENGTH} characters.", code="invalid_url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput(PARAM, "The source_url is not a valid URL.", code="invalid_url") from None
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(PARAM, "The source_url must be an http(s) URL.", code="invalid_url")
    if parts.username or parts.password:
        raise InvalidInput(PARAM, "The source_url must not carry credentials.", code="invalid_url")
    allowlist = allowlist_from_env()
    effective_port = port or (443 if parts.scheme == "https" else 80)
    if host in allowlist or f"{host}:{effective_port}" in allowlist:
        return Link(url, "allowlisted", _env_seconds("TRANSCRIBE_LINK_MAX_S", VIDEO_LINK_MAX_S))
    platform = _platform(host)
    if platform is None or parts.scheme != "https" or port not in (None, 443):
        raise InvalidInput(
            PARAM,
            "The source_url must be an https link to YouTube, TikTok, Twitch, Kick or X.",
            code="unsupported_platform",
        )
    if platform == "x" and _SPACE_PATH.match(parts.path):
        return Link(url, "x-space", _env_seconds("TRANSCRIBE_SPACE_MAX_S", SPACE_MAX_S))
    return Link(url, platform, _env_seconds("TRANSCRIBE_LINK_MAX_S", VIDEO_LINK_MAX_S))
