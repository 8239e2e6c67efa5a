"""The OpenRouter media routes, and the /api/v1 paths they own.

The /v1 → /api/v1 mirror must leave ``OWNED_PATHS`` to these routes: their /v1 twins speak
OpenAI's body (images, speech) or are the same work at another path (transcriptions).
"""

from __future__ import annotations

from typing import Any

from app.openrouter import media_images
from app.openrouter.media_audio import AUDIO_ROUTES, SPEECH_PATH, TRANSCRIPTIONS_PATH
from app.openrouter.media_catalog import openrouter_video_models
from app.openrouter.media_video import VIDEO_ROUTES

MEDIA_ROUTES: list[Any] = [media_images.openrouter_images, *AUDIO_ROUTES, *VIDEO_ROUTES, openrouter_video_models]
OWNED_PATHS = frozenset({media_images.PATH, TRANSCRIPTIONS_PATH, SPEECH_PATH})
