"""The routes only OpenRouter's layout has, for app/main.py to register."""

from __future__ import annotations

from typing import Any

OPENROUTER_ROUTES: list[Any] = []
