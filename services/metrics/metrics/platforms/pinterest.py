"""Pinterest pin analytics: `GET /v5/pins/{id}/analytics?start_date&end_date&metric_types=...`.

Quirks: analytics cover at most the last 90 days, so an older pin is reported as too old
rather than with a partial sum; clicks are pin clicks plus outbound clicks.
Account stats: `GET /v5/user_account` (follower_count, pin_count; monthly_views stays in raw: a
rolling 30-day figure, not a total).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from metrics.domain import AccountMetrics, first_present, sum_present
from metrics.platforms.base import AccountRef, AccountStats, HttpPlatform, Insights, PostRef
from shared.credentials import OAuthTokens
from shared.events import CanonicalMetrics, Platform

METRIC_TYPES = "IMPRESSION,SAVE,PIN_CLICK,OUTBOUND_CLICK"
ANALYTICS_WINDOW = timedelta(days=90)


@dataclass
class PinterestInsights(HttpPlatform):
    platform = Platform.PINTEREST

    async def fetch(self, post: PostRef, access_token: str, now: datetime) -> Insights:
        if now - post.published_at > ANALYTICS_WINDOW:
            note = "Pinterest reports analytics for the last 90 days only"
            return Insights(CanonicalMetrics(), {}, status="too_old", note=note)
        response = await self.call(
            "GET",
            f"/v5/pins/{post.remote_id}/analytics",
            params={
                "start_date": post.published_at.date().isoformat(),
                "end_date": now.date().isoformat(),
                "metric_types": METRIC_TYPES,
            },
            headers={"Authorization": f"Bearer {access_token}"},
        )
        body = self.body(response)
        self.generic_errors(response, body, now)
        everything = body.get("all") if isinstance(body.get("all"), dict) else {}
        assert isinstance(everything, dict)
        values = everything.get("summary_metrics") or everything.get("lifetime_metrics") or {}
        if not isinstance(values, dict):
            values = {}
        metrics = CanonicalMetrics(
            views=first_present(values, "IMPRESSION"),
            saves=first_present(values, "SAVE"),
            clicks=sum_present(values, "PIN_CLICK", "OUTBOUND_CLICK"),
        )
        return Insights(metrics, body)

    async def fetch_account(self, account: AccountRef, access_token: str, now: datetime) -> AccountStats:
        response = await self.call("GET", "/v5/user_account", headers={"Authorization": f"Bearer {access_token}"})
        body = self.body(response)
        self.generic_errors(response, body, now)
        metrics = AccountMetrics(
            followers=first_present(body, "follower_count"), posts=first_present(body, "pin_count")
        )
        return AccountStats(metrics, body)

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        return await self.oauth2_refresh(tokens, self.oauth.token_url or "/v5/oauth/token")
