"""Instagram media insights: `GET /{media-id}/insights?metric=...`.

Quirks: data lags up to 48 h; low-reach media answer "(#10) Not enough viewers" (no data, not
zero); `impressions` and `plays` are deprecated in favour of `views` and are only a fallback.
Account stats: `GET /{ig-user-id}?fields=followers_count,media_count` and
`GET /{ig-user-id}/insights?metric=reach&period=day` (the last day's reach).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from metrics.domain import AccountMetrics, first_present
from metrics.platforms.base import AccountRef, AccountStats
from metrics.platforms.graph import GraphLongLivedRefresh, insight_values
from shared.events import CanonicalMetrics, Platform


@dataclass
class InstagramInsights(GraphLongLivedRefresh):
    platform = Platform.INSTAGRAM
    metric_names = ("views", "reach", "likes", "comments", "shares", "saved", "total_interactions")
    refresh_grant = "ig_refresh_token"

    def map(self, values: dict[str, Any]) -> CanonicalMetrics:
        return CanonicalMetrics(
            views=first_present(values, "views", "plays", "impressions"),
            reach=first_present(values, "reach"),
            likes=first_present(values, "likes"),
            comments=first_present(values, "comments"),
            shares=first_present(values, "shares"),
            saves=first_present(values, "saved", "saves"),
        )

    async def fetch_account(self, account: AccountRef, access_token: str, now: datetime) -> AccountStats:
        node = account.external_id or "me"
        user = await self.graph_get(f"/{node}", {"fields": "followers_count,media_count"}, access_token, now)
        insights = await self.graph_get(f"/{node}/insights", {"metric": "reach", "period": "day"}, access_token, now)
        metrics = AccountMetrics(
            followers=first_present(user, "followers_count"),
            posts=first_present(user, "media_count"),
            reach=first_present(insight_values(insights), "reach"),
        )
        return AccountStats(metrics, {"user": user, "insights": insights})
