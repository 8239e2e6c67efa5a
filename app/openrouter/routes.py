"""The routes only OpenRouter's layout has, for app/main.py to register."""

from __future__ import annotations

from typing import Any

from app.openrouter.account import credits, current_key, generation
from app.openrouter.endpoints import model_by_author, model_or_endpoints

OPENROUTER_ROUTES: list[Any] = [model_or_endpoints, model_by_author, current_key, credits, generation]
