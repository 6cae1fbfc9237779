"""A local emulator of the social platforms' publishing, token, quota and insight APIs.

`python -m tools.emulator --port 8090` serves it; `create_app(config)` builds it in-process for tests
(`httpx.ASGITransport(app=create_app())`); `EmulatorClient` drives its control API.
"""

from tools.emulator.app import create_app
from tools.emulator.config import PLATFORMS, EmulatorConfig, Limits
from tools.emulator.state import Emulator

__all__ = ["PLATFORMS", "Emulator", "EmulatorConfig", "Limits", "create_app"]
