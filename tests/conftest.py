"""Shared fixtures: a real Redis (own database and key prefix), cleaned up after the session; the
gateway's log lines kept inside pytest's capture."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import uuid
import warnings
from collections.abc import Iterator
from typing import Any, TextIO

import pytest
import redis

from app.observability import logging as gateway_logging

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The suite runs in several pytest-xdist workers: one compute thread each. The default pools
# of torch and CTranslate2 (a thread per core, spinning while idle) multiplied by the workers
# oversubscribe the cores and burn CPU waiting for each other. Set before torch is imported.
for _pool in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_pool, "1")

# Tests use their own database number so they never touch a developer's data on db 0.
REDIS_URL = os.environ.get("DRYAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"the tests need a Redis server at {REDIS_URL} (set DRYAPI_TEST_REDIS_URL): {exc}")
    return REDIS_URL


@pytest.fixture(scope="session")
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"dryapi-test:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        client.delete(key)
    client.close()


def run(coro: Any) -> Any:
    """Run a coroutine from a synchronous test."""
    return asyncio.run(coro)


@pytest.fixture(scope="session", autouse=True)
def _server_logs_stay_captured() -> Iterator[None]:
    """Gateways and emulators run in threads that log at any moment, also between test phases,
    when pytest has suspended its capture and ``sys.stdout`` is the terminal. Their lines go to
    the capture stream this session started in (they are shown with the next test's captured
    output when it fails); the main thread's go to ``sys.stdout`` as before (``capsys`` works)."""
    captured: TextIO = sys.stdout

    def write(_: object, text: str) -> int:
        main = threading.current_thread() is threading.main_thread()
        try:
            return (sys.stdout if main else captured).write(text)
        except ValueError:  # the capture closed at exit while a thread still logged
            return len(text)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gateway_logging._Stdout, "write", write)
        yield


MODEL_TESTS = "tests/handlers/"
_MODEL_LIBRARIES = ("torch", "transformers", "diffusers", "sentence_transformers", "faster_whisper")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Every xdist worker imports every test module: a module that imports a model library at
    its top costs each worker seconds of CPU before the first test. Import them in the tests."""
    loaded = [name for name in _MODEL_LIBRARIES if name in sys.modules]
    if loaded:
        warnings.warn(pytest.PytestWarning(f"collecting the tests imported {', '.join(loaded)}"), stacklevel=1)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, except that every file under tests/handlers goes to one worker.

    Those files import torch, transformers, diffusers and faster-whisper (seconds of CPU per
    process) and build tiny models: spread over all workers, that cost is paid on each of them.
    As the largest unit, the group also starts first, while the other workers share the rest.
    """
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ModelTestsTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return MODEL_TESTS if nodeid.startswith(MODEL_TESTS) else super()._split_scope(nodeid)

    return ModelTestsTogether(config, log)
