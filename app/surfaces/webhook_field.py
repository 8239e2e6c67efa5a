"""The ``webhook_url`` body field every surface accepts: it turns a request async."""

from __future__ import annotations

from app.netguard import check_url
from app.services import Services


async def checked_webhook_url(services: Services, url: str | None) -> str | None:
    if url is None:
        return None
    await check_url(url, param="webhook_url", allowlist=services.settings.webhook_allowlist, require_https=True)
    return url
