"""A Redis that cannot be reached refuses paid work (503, retry) rather than running it unpaid."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from app.billing import charge
from app.billing.ledger import Ledger
from app.billing.quote import Quote
from app.errors import Unavailable
from app.store import Keys, create_redis
from tests.support.servers import free_port


async def test_no_redis_no_hold() -> None:
    redis = create_redis(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    services: Any = SimpleNamespace(ledger=Ledger(redis, Keys("outage:"), initial_micro=5_000_000, ttl_days=1))
    with pytest.raises(Unavailable) as caught:
        await charge.hold(services, "key_1", Quote(1360, {"steps": 4.0}), task="txt2img", model="m", multiplier=1.0)
    assert caught.value.status_code == 503 and caught.value.code == "billing_unavailable"
    await redis.aclose()
