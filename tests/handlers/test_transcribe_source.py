"""``source_url``: platform links downloaded with yt-dlp, then transcribed (CPU, no internet).

The download path runs end to end against a loopback HTTP server whose host is allowlisted
(``MEDIA_FETCH_ALLOWLIST``), through yt-dlp's generic extractor; the platform rules and the
live-stream refusal are unit-tested on URL shapes and info dicts, since no platform is
reachable here.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.common.cancel import CancelToken
from handlers.common.errors import HandlerError, InvalidInput, decode_error
from handlers.common.progress import EMULATOR_PROGRESS_KEY
from handlers.transcribe.handler import handler
from handlers.transcribe.platforms import SPACE_MAX_S, VIDEO_LINK_MAX_S, Link, check_link
from handlers.transcribe.source import _refuse_unfinished, _Refused, check_address, download
from tests.handlers.cancelling import cancel_after_first_progress
from tests.handlers.static_files import static_server
from tests.handlers.test_transcribe import TRANSCRIPT, noise_wav, tiny_wav
from tests.handlers.tiny_models import build_tiny_whisper_model


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_whisper_model(tmp_path_factory.mktemp("whisper") / "tiny-whisper")


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    files = {
        "/talk.wav": (tiny_wav(), "audio/wav"),
        "/long.wav": (noise_wav(seconds=3.0), "audio/wav"),
    }
    with static_server(files) as url:
        yield url


@pytest.fixture(autouse=True)
def _env(origin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSCRIBE_MODEL", "no-model-needed")  # validation fails before any load
    monkeypatch.setenv("TRANSCRIBE_CPU_THREADS", "1")
    monkeypatch.setenv("MEDIA_FETCH_ALLOWLIST", origin.removeprefix("http://"))
    for name in ("TRANSCRIBE_EXTRA_MODELS", "TRANSCRIBE_LINK_MAX_MB", "TRANSCRIBE_LINK_MAX_S",
                 "TRANSCRIBE_SPACE_MAX_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the per-job directory goes


@pytest.fixture
def whisper(tiny_whisper: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSCRIBE_MODEL", str(tiny_whisper))


def run(payload: dict[str, Any], updates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    sink = updates if updates is not None else []
    return asyncio.run(handler({"id": "job-1", "input": payload, EMULATOR_PROGRESS_KEY: sink.append}))


def error_of(output: dict[str, Any]) -> dict[str, Any]:
    error = decode_error(output)
    assert error is not None, output
    return error


@pytest.mark.slow
@pytest.mark.usefixtures("whisper")
def test_a_link_is_downloaded_transcribed_and_its_directory_removed(origin: str, tmp_path: Path) -> None:
    updates: list[dict[str, Any]] = []
    out = run({"source_url": f"{origin}/talk.wav", "model": "large-v3"}, updates)
    assert out["transcription"] == TRANSCRIPT, out
    assert out["duration"] == 0.5  # the gateway settles the job's price on it
    progress = [u["progress"] for u in updates]
    assert progress[0] == 0.0 and progress[1] == 50.0  # 0 % while downloading, 50 % once done
    assert progress[1:] == sorted(progress[1:]) and progress[-1] > 50.0  # then rising with the segments
    assert list(tmp_path.iterdir()) == []  # the per-job download directory is gone


@pytest.mark.slow
@pytest.mark.usefixtures("whisper")
def test_include_ts_puts_times_before_each_line(origin: str) -> None:
    out = run({"source_url": f"{origin}/talk.wav", "include_ts": True})
    assert out["transcription"].splitlines() == [
        "[00:00:00.000 --> 00:00:00.240] Hello there.",
        "[00:00:00.260 --> 00:00:00.480] How are you?",
    ]
    assert run({"source_url": f"{origin}/talk.wav", "include_ts": False})["transcription"] == TRANSCRIPT


@pytest.mark.slow
@pytest.mark.usefixtures("whisper")
@pytest.mark.parametrize(
    ("path", "env", "code"),
    [
        ("/missing.wav", {}, "media_fetch_failed"),
        ("/talk.wav", {"TRANSCRIBE_LINK_MAX_MB": "0.001"}, "media_too_large"),
        ("/long.wav", {"TRANSCRIBE_LINK_MAX_S": "1"}, "audio_too_long"),
    ],
)
def test_download_failures_name_source_url(
    origin: str, tmp_path: Path, path: str, env: dict[str, str], code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    error = error_of(run({"source_url": origin + path}))
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "source_url", code)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.usefixtures("whisper")
def test_a_redirect_to_a_refused_address_is_not_read(origin: str, tmp_path: Path) -> None:
    port = origin.rsplit(":", 1)[1]
    # "localhost" is not the allowlisted "127.0.0.1:<port>": the address rule applies to it.
    files = {"/hop.wav": (f"http://localhost:{port}/talk.wav".encode(), "redirect")}
    with static_server(files) as hop, pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDIA_FETCH_ALLOWLIST", f"{origin.removeprefix('http://')},{hop.removeprefix('http://')}")
        error = error_of(run({"source_url": f"{hop}/hop.wav"}))
    assert (error["param"], error["code"]) == ("source_url", "url_not_allowed")


@pytest.mark.slow
@pytest.mark.usefixtures("whisper")
def test_a_cancelled_download_stops(origin: str, tmp_path: Path) -> None:
    updates = asyncio.run(cancel_after_first_progress(handler, {"source_url": f"{origin}/talk.wav"}))
    assert [u["progress"] for u in updates] == [0.0]
    assert list(tmp_path.iterdir()) == []


def test_download_hands_over_a_file_and_removes_it(origin: str) -> None:
    link = Link(f"{origin}/talk.wav", "allowlisted", 60.0)
    seen: list[Path] = []
    size = download(link, CancelToken(), lambda path: seen.append(path) or path.stat().st_size)
    assert size == len(tiny_wav()) and not seen[0].exists()


@pytest.mark.parametrize(
    ("url", "platform", "cap"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "youtube", VIDEO_LINK_MAX_S),
        ("https://youtu.be/dQw4w9WgXcQ", "youtube", VIDEO_LINK_MAX_S),
        ("https://www.tiktok.com/@user/video/123", "tiktok", VIDEO_LINK_MAX_S),
        ("https://www.twitch.tv/videos/123", "twitch", VIDEO_LINK_MAX_S),
        ("https://kick.com/video/abc", "kick", VIDEO_LINK_MAX_S),
        ("https://x.com/user/status/123", "x", VIDEO_LINK_MAX_S),
        ("https://x.com/i/spaces/1YqKDqWqdPLJV", "x-space", SPACE_MAX_S),
        ("https://twitter.com/i/spaces/1YqKDqWqdPLJV/", "x-space", SPACE_MAX_S),
    ],
)
def test_platform_links_and_their_caps(url: str, platform: str, cap: float) -> None:
    link = check_link(url)
    assert (link.platform, link.max_duration_s) == (platform, cap)


@pytest.mark.parametrize(
    "url",
    [
        "http://www.youtube.com/watch?v=x",  # not https
        "https://www.youtube.com:8443/watch?v=x",  # a port
        "https://user:pw@www.youtube.com/watch?v=x",  # credentials
        "https://youtube.com.evil.example/watch?v=x",  # a look-alike host
        "https://example.com/video.mp4",
        "ftp://x.com/i/spaces/1",
        "https://127.0.0.1/a.wav",  # loopback, not allowlisted
        "not a url",
        "https://x.com/" + "a" * 3000,
    ],
)
def test_other_links_are_refused_naming_source_url(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_link(url)
    assert caught.value.param == "source_url"


@pytest.mark.parametrize(
    ("info", "code"),
    [
        ({"live_status": "is_live"}, "stream_not_finished"),
        ({"is_live": True}, "stream_not_finished"),
        ({"live_status": "is_upcoming"}, "stream_not_finished"),  # a scheduled Space
        ({"live_status": "post_live"}, "stream_not_finished"),
        ({"_type": "playlist", "entries": []}, "unsupported_link"),
        ({"live_status": "was_live", "duration": 91 * 60}, "audio_too_long"),  # over a Space's 90 min
    ],
)
def test_unfinished_streams_playlists_and_long_media_are_refused(info: dict[str, Any], code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _refuse_unfinished(info, Link("https://x.com/i/spaces/1", "x-space", SPACE_MAX_S))
    assert (caught.value.param, caught.value.code) == ("source_url", code)


def test_a_finished_recording_within_its_cap_passes() -> None:
    _refuse_unfinished({"live_status": "was_live", "duration": 89 * 60}, Link("u", "x-space", SPACE_MAX_S))
    _refuse_unfinished({"live_status": "not_live", "duration": 599 * 60}, Link("u", "youtube", VIDEO_LINK_MAX_S))


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/x", "http://10.1.2.3/x", "http://169.254.169.254/latest", "http://[::1]/x",
     "http://[::ffff:192.168.0.1]/x", "file:///etc/passwd", "ws://203.0.113.9/x"],
)
def test_the_address_rule_refuses_private_hosts(url: str) -> None:
    with pytest.raises(_Refused):
        check_address(url, frozenset())


def test_the_address_rule_lets_allowlisted_and_public_addresses_through() -> None:
    check_address("http://127.0.0.1:8000/x", frozenset({"127.0.0.1:8000"}))
    check_address("https://8.8.8.8/x", frozenset())  # an IP literal resolves without DNS


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"source_url": "https://youtu.be/x", "audio": "https://example.com/a.wav"}, "source_url"),
        ({"source_url": "https://youtu.be/x", "audio_base64": "AAAA"}, "source_url"),
        ({"source_url": ""}, "source_url"),
        ({"source_url": "https://youtu.be/x", "include_ts": "sometimes"}, "include_ts"),
        ({"source_url": "https://example.com/a.mp4"}, "source_url"),
    ],
)
def test_bad_source_fields_are_named(payload: dict[str, Any], param: str) -> None:
    error = error_of(run(payload))
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_handler_errors_keep_their_type() -> None:
    assert isinstance(InvalidInput("source_url", "x"), HandlerError)


@pytest.mark.slow
@pytest.mark.usefixtures("whisper")
def test_links_and_transcripts_are_not_logged_or_printed(
    origin: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    run({"source_url": f"{origin}/talk.wav"})
    run({"source_url": f"{origin}/missing.wav"})
    printed = "".join(capfd.readouterr())
    for secret in ("talk.wav", "missing.wav", "Hello there"):
        assert secret not in caplog.text and secret not in printed
