"""What an emulated endpoint runs, and the emulator's timing settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec


class EmulatorEndpoint(msgspec.Struct, frozen=True):
    """One emulated serverless endpoint: a handler function and how many jobs it runs at once."""

    handler: str | Callable[..., Any]  # "module:function" or the callable itself
    concurrency: int = 1  # jobs this endpoint runs at once (its "workers")
    env: dict[str, str] = {}  # set in os.environ before the handler module is imported
    # runpod.serverless.start's flag: a generator job's output is the list of its yields
    # (off: only /stream sees them and the output is an empty list, as on RunPod)
    return_aggregate_stream: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.handler, str):
            module, sep, attr = self.handler.partition(":")
            if not (module and sep and attr):
                raise ValueError(f"handler must look like 'module:function', got {self.handler!r}")
        elif not callable(self.handler):
            raise TypeError("handler must be a 'module:function' string or a callable")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")


class Timings(msgspec.Struct, frozen=True):
    """How long the emulator keeps things, in seconds (RunPod's documented defaults)."""

    run_result_ttl_s: float = 1800.0  # a /run job's result, after it finishes
    runsync_result_ttl_s: float = 60.0  # a /runsync job's result, after it finishes
    webhook_retry_delay_s: float = 10.0  # between the 3 webhook attempts
    default_execution_timeout_s: float = 600.0  # RunPod's endpoint default
    default_ttl_s: float = 86400.0  # RunPod's default job lifespan (queue + run)
