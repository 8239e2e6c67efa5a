"""The engine tests reuse the gateway tests' emulator fixture."""

from tests.gateway.conftest import emulator

__all__ = ["emulator"]
