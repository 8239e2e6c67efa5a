"""Resolving a handler spec ("module:function") to the function it names."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any


def load_handler(spec: str) -> Callable[..., Any]:
    """Import ``module`` and return its ``function`` (dotted attributes allowed).

    The current working directory goes on ``sys.path`` first, as ``uvicorn --app-dir .``
    does, so ``handlers.chat.handler:handler`` resolves from the repository root.
    """
    module_name, sep, attr = spec.partition(":")
    if not (module_name and sep and attr):
        raise ValueError(f"handler must look like 'module:function', got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AttributeError(f"{spec!r}: {module_name!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise TypeError(f"{spec!r} is not callable")
    handler: Callable[..., Any] = target
    return handler
