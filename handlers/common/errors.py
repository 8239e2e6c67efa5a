"""The error shape every bundled handler returns.

A handler never raises to RunPod for a failure it understands: it returns
``{"error": {"type", "code", "message", "param"}}``. The runpod SDK pops ``error`` and
marks the job FAILED; the gateway maps ``invalid_request_error`` to a 400 naming ``param``
and every other type to a 502.
"""

from __future__ import annotations

from typing import Any


class HandlerError(Exception):
    """A failure the handler can describe to the client."""

    def __init__(
        self,
        message: str,
        *,
        type: str = "server_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def to_output(self) -> dict[str, Any]:
        """The dict a handler returns (or yields) so the job ends FAILED with this error."""
        return {
            "error": {
                "type": self.type,
                "code": self.code,
                "message": self.message,
                "param": self.param,
            }
        }


class InvalidInput(HandlerError):
    """A bad input field: the gateway answers 400 ``invalid_request_error`` naming ``param``."""

    def __init__(self, param: str, message: str, *, code: str = "invalid_value") -> None:
        super().__init__(message, type="invalid_request_error", code=code, param=param)


def server_error(message: str, *, code: str = "handler_error") -> dict[str, Any]:
    """Output for an internal failure; the message must not contain client payloads."""
    return HandlerError(message, code=code).to_output()
