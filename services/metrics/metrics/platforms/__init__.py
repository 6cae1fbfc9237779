"""One module per platform behind one Protocol (`InsightSource`); the registry builds them.

Adding a platform is one module, one line in `SOURCES` and one contract-test subclass.
Platforms without post metrics (Telegram) have no module: their posts are marked unsupported.
"""

from __future__ import annotations

from metrics.platforms.base import HttpPlatform, InsightSource
from metrics.platforms.facebook import FacebookInsights
from metrics.platforms.instagram import InstagramInsights
from metrics.platforms.linkedin import LinkedInInsights
from metrics.platforms.pinterest import PinterestInsights
from metrics.platforms.threads import ThreadsInsights
from metrics.platforms.tiktok import TikTokInsights
from metrics.platforms.x import XInsights
from metrics.platforms.youtube import YouTubeInsights
from shared.events import Platform

SOURCES: dict[Platform, type[HttpPlatform]] = {
    Platform.INSTAGRAM: InstagramInsights,
    Platform.FACEBOOK: FacebookInsights,
    Platform.THREADS: ThreadsInsights,
    Platform.X: XInsights,
    Platform.TIKTOK: TikTokInsights,
    Platform.YOUTUBE: YouTubeInsights,
    Platform.LINKEDIN: LinkedInInsights,
    Platform.PINTEREST: PinterestInsights,
}

__all__ = ["SOURCES", "InsightSource"]
