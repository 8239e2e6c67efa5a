"""The error shape every bundled handler returns.

A handler never raises to RunPod for a failure it understands: it returns (or yields)
``{"error": "<JSON of {"type", "code", "message", "param"}>"}``. The value is a JSON-encoded
*string* because the runpod SDK passes a returned error through as is but turns a yielded
error into ``str(error)``: a dict would reach RunPod as a Python repr nobody can decode, a
string arrives unchanged either way. The SDK marks the job FAILED; the gateway decodes the
string and maps ``invalid_request_error`` to a 400 naming ``param``, every other type to a 502.
"""

from __future__ import annotations

import json
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

    def payload(self) -> dict[str, Any]:
        """The structured error the gateway decodes."""
        return {"type": self.type, "code": self.code, "message": self.message, "param": self.param}

    def to_output(self) -> dict[str, Any]:
        """The dict a handler returns (or yields) so the job ends FAILED with this error."""
        return {"error": json.dumps(self.payload())}


class InvalidInput(HandlerError):
    """A bad input field: the gateway answers 400 ``invalid_request_error`` naming ``param``."""

    def __init__(self, param: str, message: str, *, code: str = "invalid_value") -> None:
        super().__init__(message, type="invalid_request_error", code=code, param=param)


def server_error(message: str, *, code: str = "handler_error") -> dict[str, Any]:
    """Output for an internal failure; the message must not contain client payloads."""
    return HandlerError(message, code=code).to_output()


def decode_error(output: Any) -> dict[str, Any] | None:
    """The structured error inside a handler's ``{"error": ...}`` output, else None (tests, tools)."""
    if not isinstance(output, dict) or "error" not in output:
        return None
    error = output["error"]
    if isinstance(error, str):
        error = json.loads(error)
    return error if isinstance(error, dict) else None
