"""Which links the link-transcription tasks accept: https pages of the supported platforms.

The worker downloads the media (with its own SSRF checks); the gateway only refuses what no
supported platform could serve, by the URL's shape, so no DNS lookup is needed here.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Host (or a subdomain of it) → platform. X has two domains.
_VIDEO_HOSTS = {
    "youtube.com": "youtube",
    "youtu.be": "youtube",
    "tiktok.com": "tiktok",
    "twitch.tv": "twitch",
    "kick.com": "kick",
    "x.com": "x",
    "twitter.com": "x",
}
_SPACE_PATH = re.compile(r"^/i/spaces/[A-Za-z0-9]+/?$")
MAX_URL_LENGTH = 2048


class UnsupportedLink(ValueError):
    pass


def _host_platform(host: str) -> str | None:
    for domain, platform in _VIDEO_HOSTS.items():
        if host == domain or host.endswith("." + domain):
            return platform
    return None


def _split(url: str) -> tuple[str, str]:
    if len(url) > MAX_URL_LENGTH:
        raise UnsupportedLink(f"the link is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UnsupportedLink("the link is not a valid URL") from None
    if parts.scheme != "https":
        raise UnsupportedLink("the link must be an https URL")
    if parts.username or parts.password or port not in (None, 443):
        raise UnsupportedLink("the link must not carry credentials or a port")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsupportedLink("the link has no host")
    return host, parts.path


def video_platform(url: str) -> str:
    """The platform of a ``vid2txt`` link; X Spaces belong to ``aud2txt``."""
    host, path = _split(url)
    platform = _host_platform(host)
    if platform is None:
        raise UnsupportedLink("only YouTube, TikTok, Twitch, Kick and X links are supported")
    if platform == "x" and _SPACE_PATH.match(path):
        raise UnsupportedLink("X Spaces are transcribed by aud2txt")
    return platform


def space_link(url: str) -> str:
    """An ``aud2txt`` link must be a (completed) X Space: ``https://x.com/i/spaces/<id>``."""
    host, path = _split(url)
    if _host_platform(host) != "x" or not _SPACE_PATH.match(path):
        raise UnsupportedLink("only X Spaces links (https://x.com/i/spaces/<id>) are supported")
    return "x"
