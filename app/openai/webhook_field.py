"""The ``webhook_url`` body field every surface accepts (it turns a request async), and the
account-level default every async job that names none is delivered to."""

from __future__ import annotations

from app.auth import Principal
from app.netguard import check_url
from app.services import Services


async def checked_webhook_url(services: Services, url: str | None) -> str | None:
    if url is None:
        return None
    await check_url(url, param="webhook_url", allowlist=services.settings.webhook_allowlist, require_https=True)
    return url


async def job_webhook_url(services: Services, principal: Principal, named: str | None) -> str | None:
    """The job's own ``webhook_url``, else the key's account-level one (checked when it was set;
    read from the authenticated key, so no Redis call on the request path)."""
    return named or principal.webhook_url or None
