"""A webhook worker process for the SIGKILL test: ``python -m tests.webhooks.worker_main '<json config>'``."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from app.store import Keys, create_redis
from app.webhooks import WebhookOutbox
from tests.webhooks.conftest import secret_from


async def main(config: dict[str, object]) -> None:
    redis = create_redis(str(config["redis_url"]))
    outbox = WebhookOutbox(
        redis,
        Keys(str(config["prefix"])),
        secret_for=secret_from,
        schedule=[float(x) for x in config["schedule"]],  # type: ignore[attr-defined]
        allowlist=frozenset({"127.0.0.1"}),
        timeout_s=float(config["timeout_s"]),  # type: ignore[arg-type]
        lease_s=float(config["lease_s"]),  # type: ignore[arg-type]
        poll_interval_s=0.05,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("worker ready", flush=True)
    await outbox.run(stop)
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
