"""What the OpenAI-dialect routes share for ``models`` fallbacks (app/routing/fallback.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from app.billing import charge
from app.errors import UpstreamTimeout
from app.services import Services

T = TypeVar("T")


async def released_on_timeout(
    services: Services, key_id: str, billing: Mapping[str, Any] | None, work: Awaitable[T]
) -> T:
    """``charge.paid`` keeps a hold when the wait times out (a job is followed and settles); a
    passthrough call that timed out left no job, and the next model takes a hold of its own."""
    try:
        return await work
    except UpstreamTimeout:
        if billing is not None:
            await charge.release(services, key_id, billing)
        raise
