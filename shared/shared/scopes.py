"""Whether a connected account's OAuth grant lets us publish: the scope each platform requires.

One table for every service: approval shows it on accounts, the publisher holds posts of accounts
connected without it. Scope names as the platforms' docs spell them. Google reports scopes as URLs,
so a scope matches on its last path segment too. Telegram bots need no OAuth grant: a bot token can
always post.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.events import Platform

# Any one of a platform's scopes grants publishing.
PUBLISH_SCOPES: Mapping[Platform, frozenset[str]] = {
    Platform.INSTAGRAM: frozenset({"instagram_content_publish", "instagram_business_content_publish"}),
    Platform.FACEBOOK: frozenset({"pages_manage_posts"}),
    Platform.X: frozenset({"tweet.write"}),
    Platform.TIKTOK: frozenset({"video.publish"}),
    Platform.YOUTUBE: frozenset({"youtube.upload", "youtube"}),
    Platform.LINKEDIN: frozenset({"w_member_social", "w_organization_social"}),
    Platform.THREADS: frozenset({"threads_content_publish"}),
    Platform.PINTEREST: frozenset({"pins:write"}),
}


def can_publish(platform: Platform, granted: Iterable[str]) -> bool:
    needed = PUBLISH_SCOPES.get(platform)
    if needed is None:
        return True  # Telegram
    names = {scope.rstrip("/").rsplit("/", 1)[-1] for scope in granted}
    return bool(names & needed)
