"""Every native task by its route name."""

from __future__ import annotations

from app.tasks.embeddings import TXT2EMBEDDING
from app.tasks.images import IMG2IMG, IMG_RMBG, IMG_UPSCALE, TXT2IMG
from app.tasks.music import TXT2MUSIC
from app.tasks.ocr import IMG2TXT
from app.tasks.spec import TaskSpec
from app.tasks.speech import TXT2AUDIO
from app.tasks.transcribe import AUD2TXT, AUDIOFILE2TXT, VID2TXT, VIDEOFILE2TXT
from app.tasks.video import AUD2VIDEO, IMG2VIDEO, TXT2VIDEO

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TXT2IMG, IMG2IMG, IMG_RMBG, IMG_UPSCALE, IMG2TXT,
        TXT2AUDIO, TXT2MUSIC, TXT2VIDEO, IMG2VIDEO, AUD2VIDEO,
        VID2TXT, AUD2TXT, VIDEOFILE2TXT, AUDIOFILE2TXT, TXT2EMBEDDING,
    )
}
