"""A real ``python -m app serve`` process with short server timeouts, for the raw-socket tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.observability.conftest import GatewayProcess, emulator, issue_key, start_gateway_process
from tests.support.servers import ServerThread

__all__ = ["GatewayProcess", "emulator", "issue_key"]

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, emulator: ServerThread, redis_url: str, redis_prefix: str
) -> Iterator[GatewayProcess]:
    prefix = f"{redis_prefix}edge{uuid.uuid4().hex[:6]}:"
    tmp: Path = tmp_path_factory.mktemp("served")
    gateway = start_gateway_process(
        tmp,
        f"{emulator.url}/v2",
        redis_url,
        prefix,
        DRYAPI_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        DRYAPI_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
        DRYAPI_ADMIN_KEY="edge-admin-key",
    )
    yield gateway
    gateway.terminate()
