"""app/tasks/platforms.py: link shapes the transcription-from-link tasks accept."""

from __future__ import annotations

import pytest

from app.tasks.platforms import UnsupportedLink, space_link, video_platform


@pytest.mark.parametrize(
    ("url", "platform"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "youtube"),
        ("https://youtu.be/dQw4w9WgXcQ", "youtube"),
        ("https://m.youtube.com/shorts/abc", "youtube"),
        ("https://www.tiktok.com/@user/video/123", "tiktok"),
        ("https://www.twitch.tv/videos/123456", "twitch"),
        ("https://kick.com/video/abc-def", "kick"),
        ("https://x.com/user/status/123", "x"),
        ("https://twitter.com/user/status/123", "x"),
        ("https://WWW.YOUTUBE.COM./watch?v=1", "youtube"),
    ],
)
def test_supported_video_links(url: str, platform: str) -> None:
    assert video_platform(url) == platform


@pytest.mark.parametrize(
    "url",
    [
        "http://www.youtube.com/watch?v=1",  # not https
        "https://evil.example/watch?v=1",
        "https://youtube.com.evil.example/x",
        "https://notyoutube.com/watch",
        "https://user:pw@youtube.com/watch?v=1",
        "https://youtube.com:8443/watch?v=1",
        "https://youtube.com:notaport/x",
        "https://[::1/x",
        "https:///nohost",
        "ftp://youtube.com/x",
        "https://x.com/i/spaces/1YqKDqDXAbwKV",  # a Space: aud2txt
        "https://youtube.com/" + "a" * 3000,
    ],
)
def test_refused_video_links(url: str) -> None:
    with pytest.raises(UnsupportedLink):
        video_platform(url)


@pytest.mark.parametrize("url", ["https://x.com/i/spaces/1YqKDqDXAbwKV", "https://twitter.com/i/spaces/1YqKDqDXAbwKV/"])
def test_space_links(url: str) -> None:
    assert space_link(url) == "x"


@pytest.mark.parametrize(
    "url",
    ["https://x.com/user/status/1", "https://youtube.com/i/spaces/1", "http://x.com/i/spaces/1", "https://x.com/i/spaces/"],
)
def test_refused_space_links(url: str) -> None:
    with pytest.raises(UnsupportedLink):
        space_link(url)
