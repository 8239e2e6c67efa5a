"""What a worker answers for a failure it did not foresee.

Out of GPU memory: the allocator's cache is freed and the client told what to send instead.
Anything else: the client hears only the exception's type, and the log gets the type and the
frames, never the message (an exception message can quote the input).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from handlers.common.errors import server_error


def is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def free_gpu_memory() -> None:
    """Return the CUDA allocator's cached blocks after an OOM; best effort, a no-op on CPU."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        return


def unexpected_failure(exc: Exception, logger: logging.Logger, *, work: str, oom: str, code: str) -> dict[str, Any]:
    """The job's error output: ``oom`` when it ran out of memory, else "``work`` failed (Type)"."""
    if is_out_of_memory(exc):
        free_gpu_memory()
        return server_error(oom, code="out_of_memory")
    logger.error("%s failed: %s\n%s", work.lower(), type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
    return server_error(f"{work} failed ({type(exc).__name__})", code=code)
