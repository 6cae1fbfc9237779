"""YouTube video statistics: `GET /youtube/v3/videos?part=statistics&id=...`.

Quirks: counts are strings; `likeCount` is absent when the owner hides it (None, not zero);
quota errors are 403 `quotaExceeded` and the quota resets at midnight Pacific time.
Account stats: `GET /youtube/v3/channels?part=statistics&mine=true` (`subscriberCount` is left
out when the channel hides it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx

from metrics.domain import AccountMetrics, first_present
from metrics.platforms.base import (
    AccountRef,
    AccountStats,
    HttpPlatform,
    Insights,
    Json,
    PermanentError,
    PostRef,
    RateLimited,
)
from shared.credentials import OAuthTokens
from shared.events import CanonicalMetrics, Platform

PACIFIC = ZoneInfo("America/Los_Angeles")
QUOTA_REASONS = frozenset({"quotaExceeded", "rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded"})


def next_pacific_midnight(now: datetime) -> datetime:
    local = now.astimezone(PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), PACIFIC)
    return midnight.astimezone(UTC)


@dataclass
class YouTubeInsights(HttpPlatform):
    platform = Platform.YOUTUBE

    async def fetch(self, post: PostRef, access_token: str, now: datetime) -> Insights:
        response = await self.call(
            "GET",
            "/youtube/v3/videos",
            params={"part": "statistics", "id": post.remote_id},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        body = self.checked(response, now)
        items = [i for i in body.get("items") or [] if isinstance(i, dict) and i.get("id") == post.remote_id]
        if not items:
            note = "YouTube returned no data for this video (processing, private or removed)"
            return Insights(CanonicalMetrics(), body, status="not_enough_data", note=note)
        stats = items[0].get("statistics") if isinstance(items[0].get("statistics"), dict) else {}
        assert isinstance(stats, dict)
        metrics = CanonicalMetrics(
            views=first_present(stats, "viewCount"),
            likes=first_present(stats, "likeCount"),
            comments=first_present(stats, "commentCount"),
        )
        return Insights(metrics, body)

    async def fetch_account(self, account: AccountRef, access_token: str, now: datetime) -> AccountStats:
        response = await self.call(
            "GET",
            "/youtube/v3/channels",
            params={"part": "statistics", "mine": "true"},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        body = self.checked(response, now)
        items = [i for i in body.get("items") or [] if isinstance(i, dict)]
        if not items:
            raise PermanentError("YouTube returned no channel for this account", detail=body)
        stats = items[0].get("statistics") if isinstance(items[0].get("statistics"), dict) else {}
        assert isinstance(stats, dict)
        metrics = AccountMetrics(
            followers=first_present(stats, "subscriberCount"),
            posts=first_present(stats, "videoCount"),
            views=first_present(stats, "viewCount"),
        )
        return AccountStats(metrics, body)

    def checked(self, response: httpx.Response, now: datetime) -> Json:
        body = self.body(response)
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        assert isinstance(error, dict)
        reasons = {e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)}
        if response.status_code == 403 and reasons & QUOTA_REASONS:
            raise RateLimited(str(error.get("message")), retry_at=next_pacific_midnight(now), detail=body)
        self.generic_errors(response, body, now)
        return body

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        return await self.oauth2_refresh(tokens, self.oauth.token_url or "/token")
