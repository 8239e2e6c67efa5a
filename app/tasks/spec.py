"""What every task declares: its parameters, its files, its checks, its price quantities and
the worker input it becomes. One ``TaskSpec`` per native task (``app/tasks/registry.py``);
the OpenAI twins (``/v1/images/...``, ``/v1/audio/speech``) build the same parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.routing.schema import ModelRoute, Surface
from app.tasks.common import TaskParams
from app.tasks.validation import FieldErrors

MB = 1024 * 1024
IMAGE_FORMATS = frozenset({"jpeg", "png", "gif", "bmp", "webp"})
# The seeds' limits page, per kind of upload (reference §12.2).
AUDIO_FORMATS = frozenset({"aac", "mp3", "ogg", "wav", "webm", "flac", "m4a"})
VIDEO_FORMATS = frozenset({"mp4", "mpeg", "mov", "avi", "wmv", "ogg", "webm"})
VOICE_FORMATS = frozenset({"mp3", "wav", "flac", "ogg", "m4a"})
CONDITIONING_AUDIO_FORMATS = frozenset({"mp3", "wav", "ogg", "flac"})


@dataclass(frozen=True)
class FileRule:
    """A file field: the formats it takes, its size cap, and whether it repeats (``images[]``)."""

    name: str
    formats: frozenset[str]
    max_bytes: int
    required: bool = False
    many: int = 1  # how many parts the field may have


@dataclass(frozen=True)
class Upload:
    """An accepted file as the task sees it: its format, size and (images) pixel size."""

    format: str
    size: int
    dimensions: tuple[int, int] | None = None


Uploads = Mapping[str, list[Upload]]


@dataclass(frozen=True)
class TaskSpec:
    name: str  # the route: txt2img, aud2txt, ...
    surface: Surface
    inference_type: str  # as the models catalogue spells it
    params: type[TaskParams]
    files: tuple[FileRule, ...] = ()
    # Cross-field rules the Struct cannot say (modes, mutually exclusive files, model voices).
    check: Callable[[Any, Uploads, ModelRoute], FieldErrors] = field(default=lambda params, uploads, route: [])
    # What the price scales with (``app/billing/pricing.py``), before the job runs.
    quantities: Callable[[Any, Uploads, ModelRoute], dict[str, float]] = field(
        default=lambda params, uploads, route: {}
    )
    # The worker's job input; ``urls`` maps each file field to the URLs the worker fetches.
    worker_input: Callable[[Any, str, Mapping[str, list[str]]], dict[str, Any]] = field(
        default=lambda params, upstream_model, urls: {}
    )
