"""One module per platform; `PLATFORM_TYPES` is the registry the app mounts under `/<name>`."""

from __future__ import annotations

from tools.emulator.platforms.base import Platform
from tools.emulator.platforms.facebook import Facebook
from tools.emulator.platforms.instagram import Instagram
from tools.emulator.platforms.linkedin import LinkedIn
from tools.emulator.platforms.pinterest import Pinterest
from tools.emulator.platforms.telegram import Telegram
from tools.emulator.platforms.threads import Threads
from tools.emulator.platforms.tiktok import TikTok
from tools.emulator.platforms.x import X
from tools.emulator.platforms.youtube import YouTube

PLATFORM_TYPES: tuple[type[Platform], ...] = (
    Instagram,
    Facebook,
    X,
    TikTok,
    YouTube,
    LinkedIn,
    Threads,
    Pinterest,
    Telegram,
)

__all__ = ["PLATFORM_TYPES", "Platform"]
