"""The app factory: one Starlette app with the control API and one mount per platform."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from tools.emulator.config import EmulatorConfig
from tools.emulator.control import Control
from tools.emulator.platforms import PLATFORM_TYPES
from tools.emulator.state import Emulator


def create_app(config: EmulatorConfig | None = None, emulator: Emulator | None = None) -> Starlette:
    emulator = emulator or Emulator(config or EmulatorConfig())
    mounts = [Mount("/_emulator", routes=Control(emulator).routes())]
    mounts += [Mount(f"/{kind.name}", routes=kind(emulator).routes()) for kind in PLATFORM_TYPES]
    app = Starlette(routes=mounts)
    app.state.emulator = emulator
    return app
