"""One module per platform behind one Protocol (`base.PlatformClient`); this is the registry.

Adding a platform: one module, one `DEFAULTS` entry and one line in `build_client`, plus a
contract-test subclass in tests/publisher/test_contract.py.
"""

from __future__ import annotations

from datetime import timedelta

import httpx

from publisher.domain import Limit
from publisher.platforms.base import MediaFetcher, PlatformClient, PlatformDefaults, Polling
from publisher.platforms.facebook import Facebook
from publisher.platforms.instagram import Instagram
from publisher.platforms.linkedin import LinkedIn
from publisher.platforms.pinterest import Pinterest
from publisher.platforms.telegram import Telegram
from publisher.platforms.threads import Threads
from publisher.platforms.tiktok import TikTok
from publisher.platforms.x import X
from publisher.platforms.youtube import YouTube
from publisher.settings import PlatformSettings
from shared.events import Platform

DAY = timedelta(days=1)

# Quotas are configuration (PLATFORMS.md gives the numbers; they change often): these are the
# defaults, settings override them, and the live value a platform reports wins over both.
DEFAULTS: dict[Platform, PlatformDefaults] = {
    Platform.INSTAGRAM: PlatformDefaults(
        "https://graph.facebook.com/v21.0", limit=Limit(50, DAY), refresh_margin=timedelta(days=7)
    ),
    Platform.FACEBOOK: PlatformDefaults("https://graph.facebook.com/v21.0", refresh_margin=timedelta(days=7)),
    Platform.X: PlatformDefaults("https://api.x.com", limit=Limit(100, DAY), refresh_margin=timedelta(minutes=5)),
    Platform.TIKTOK: PlatformDefaults("https://open.tiktokapis.com", refresh_margin=timedelta(minutes=10)),
    Platform.YOUTUBE: PlatformDefaults(
        "https://www.googleapis.com",
        token_url="https://oauth2.googleapis.com/token",  # noqa: S106 - a URL,
        refresh_margin=timedelta(minutes=5),
    ),
    Platform.LINKEDIN: PlatformDefaults(
        "https://api.linkedin.com",
        token_url="https://www.linkedin.com/oauth/v2/accessToken",  # noqa: S106 - a URL
        refresh_margin=timedelta(days=7),
    ),
    Platform.THREADS: PlatformDefaults(
        "https://graph.threads.net/v1.0", limit=Limit(250, DAY), refresh_margin=timedelta(days=7)
    ),
    Platform.PINTEREST: PlatformDefaults("https://api.pinterest.com", refresh_margin=timedelta(days=1)),
    # About 20 messages a minute per group chat (guidance); a channel account posts to one chat.
    Platform.TELEGRAM: PlatformDefaults("https://api.telegram.org", limit=Limit(20, timedelta(minutes=1))),
}


def limit_of(platform: Platform, settings: PlatformSettings) -> Limit | None:
    default = DEFAULTS[platform].limit
    count = settings.publish_limit if settings.publish_limit is not None else (default.count if default else None)
    if count is None:
        return None
    window = settings.publish_window_seconds
    return Limit(count, timedelta(seconds=window) if window else (default.window if default else DAY))


def app_limit_of(platform: Platform, settings: PlatformSettings) -> Limit | None:
    default = DEFAULTS[platform].app_limit
    count = settings.app_limit if settings.app_limit is not None else (default.count if default else None)
    if count is None:
        return None
    window = settings.app_window_seconds
    return Limit(count, timedelta(seconds=window) if window else (default.window if default else DAY))


def refresh_margin_of(platform: Platform, settings: PlatformSettings) -> timedelta:
    if settings.refresh_margin_seconds is not None:
        return timedelta(seconds=settings.refresh_margin_seconds)
    return DEFAULTS[platform].refresh_margin


def build_client(  # noqa: PLR0911 - one return per platform
    platform: Platform,
    client: httpx.AsyncClient,
    settings: PlatformSettings,
    *,
    base_url: str | None,
    fetch_media: MediaFetcher,
    polling: Polling,
) -> PlatformClient:
    """The platform module for `platform`, pointed at `base_url` (else the settings', else the real API)."""
    base = base_url or settings.base_url or DEFAULTS[platform].base_url
    # With an explicit base (the emulator), token endpoints live under it too.
    token_url = settings.token_url or (None if base_url or settings.base_url else DEFAULTS[platform].token_url)
    secret = settings.client_secret.get_secret_value() if settings.client_secret else None
    match platform:
        case Platform.INSTAGRAM:
            return Instagram(client, base_url=base, polling=polling)
        case Platform.THREADS:
            return Threads(client, base_url=base, polling=polling)
        case Platform.FACEBOOK:
            return Facebook(client, base_url=base)
        case Platform.X:
            return X(
                client,
                base_url=base,
                fetch_media=fetch_media,
                polling=polling,
                client_id=settings.client_id,
                token_url=token_url,
            )
        case Platform.TIKTOK:
            return TikTok(
                client,
                base_url=base,
                polling=polling,
                client_id=settings.client_id,
                client_secret=secret,
                token_url=token_url,
            )
        case Platform.YOUTUBE:
            return YouTube(
                client,
                base_url=base,
                fetch_media=fetch_media,
                client_id=settings.client_id,
                client_secret=secret,
                token_url=token_url,
            )
        case Platform.LINKEDIN:
            return LinkedIn(
                client,
                base_url=base,
                fetch_media=fetch_media,
                polling=polling,
                client_id=settings.client_id,
                client_secret=secret,
                token_url=token_url,
            )
        case Platform.PINTEREST:
            return Pinterest(
                client,
                base_url=base,
                fetch_media=fetch_media,
                polling=polling,
                client_id=settings.client_id,
                client_secret=secret,
                token_url=token_url,
            )
        case Platform.TELEGRAM:
            return Telegram(client, base_url=base)


__all__ = ["DEFAULTS", "PlatformClient", "app_limit_of", "build_client", "limit_of", "refresh_margin_of"]
