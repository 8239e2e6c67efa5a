"""vid2txt, aud2txt, videofile2txt, audiofile2txt: Whisper transcription of links and uploads.

Worker dialect: worker-faster_whisper's (``audio`` URL), plus ``source_url`` for a platform
link, which the worker downloads itself with its own SSRF checks; the gateway only checks the
link's shape (``app/tasks/platforms.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from app.routing.schema import ModelRoute
from app.tasks.common import TaskParams
from app.tasks.platforms import UnsupportedLink, space_link, video_platform
from app.tasks.spec import AUDIO_FORMATS, MB, VIDEO_FORMATS, FileRule, TaskSpec, Uploads
from app.tasks.validation import FieldErrors

Link = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
# What a job may last, from the seeds' limits: held in full at submit, settled on the real length.
MAX_VIDEO_LINK_S = 600 * 60
MAX_SPACE_S = 90 * 60
MAX_FILE_S = 600 * 60


class Transcription(TaskParams, kw_only=True):
    include_ts: bool = False
    # The price calls' alternative to a link or a file (reference §3.12-3.15).
    duration_seconds: Annotated[float, msgspec.Meta(gt=0, le=MAX_FILE_S)] | None = None


class VideoLink(Transcription, kw_only=True):
    video_url: Link


class SpaceLink(Transcription, kw_only=True):
    audio_url: Link


def _check_video_link(params: VideoLink, uploads: Uploads, route: ModelRoute) -> FieldErrors:
    try:
        video_platform(params.video_url)
    except UnsupportedLink as exc:
        return [("video_url", f"The video_url is not supported: {exc}.")]
    return []


def _check_space(params: SpaceLink, uploads: Uploads, route: ModelRoute) -> FieldErrors:
    try:
        space_link(params.audio_url)
    except UnsupportedLink as exc:
        return [("audio_url", f"The audio_url is not supported: {exc}.")]
    return []


def _quantities(cap_s: float) -> Any:
    def quantities(params: Transcription, uploads: Uploads, route: ModelRoute) -> dict[str, float]:
        return {"media_seconds": params.duration_seconds or cap_s}

    return quantities


def _worker_input(link_field: str | None, file_field: str | None) -> Any:
    def build(params: Transcription, upstream_model: str, urls: Mapping[str, list[str]]) -> dict[str, Any]:
        job: dict[str, Any] = {"model": upstream_model, "word_timestamps": False, "include_ts": params.include_ts}
        if link_field is not None:
            job["source_url"] = getattr(params, link_field)
        if file_field is not None:
            job["audio"] = urls[file_field][0]
        return job

    return build


VID2TXT = TaskSpec(
    "vid2txt", "transcribe", "video2text", VideoLink,
    check=_check_video_link, quantities=_quantities(MAX_VIDEO_LINK_S), worker_input=_worker_input("video_url", None),
)
AUD2TXT = TaskSpec(
    "aud2txt", "transcribe", "audio2text", SpaceLink,
    check=_check_space, quantities=_quantities(MAX_SPACE_S), worker_input=_worker_input("audio_url", None),
)
VIDEOFILE2TXT = TaskSpec(
    "videofile2txt", "transcribe", "video_file2text", Transcription,
    files=(FileRule("video", VIDEO_FORMATS, 80 * MB, required=True),),
    quantities=_quantities(MAX_FILE_S), worker_input=_worker_input(None, "video"),
)
AUDIOFILE2TXT = TaskSpec(
    "audiofile2txt", "transcribe", "audio_file2text", Transcription,
    files=(FileRule("audio", AUDIO_FORMATS, 80 * MB, required=True),),
    quantities=_quantities(MAX_FILE_S), worker_input=_worker_input(None, "audio"),
)
