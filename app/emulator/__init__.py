"""A RunPod-compatible serverless API that runs real handler functions locally.

The local mode's GPU side and the test suite's upstream; see ``create_emulator_app``.
"""

from app.emulator.app import create_emulator_app
from app.emulator.config import EmulatorEndpoint
from app.emulator.loader import load_handler

__all__ = ["EmulatorEndpoint", "create_emulator_app", "load_handler"]
