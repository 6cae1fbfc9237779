"""Threads media insights: `GET /{media}/insights?metric=views,likes,replies,reposts,quotes,shares`.

Replies are comments; reposts and quotes are shares (with the `shares` metric where given).
Threads reports no reach, saves or clicks per post: those stay None.
Account stats: `GET /{user}/threads_insights?metric=followers_count` (a total value).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from metrics.domain import AccountMetrics, first_present, sum_present
from metrics.platforms.base import AccountRef, AccountStats
from metrics.platforms.graph import GraphLongLivedRefresh, insight_values
from shared.events import CanonicalMetrics, Platform


@dataclass
class ThreadsInsights(GraphLongLivedRefresh):
    platform = Platform.THREADS
    metric_names = ("views", "likes", "replies", "reposts", "quotes", "shares")
    refresh_grant = "th_refresh_token"

    def map(self, values: dict[str, Any]) -> CanonicalMetrics:
        return CanonicalMetrics(
            views=first_present(values, "views"),
            likes=first_present(values, "likes"),
            comments=first_present(values, "replies"),
            shares=sum_present(values, "reposts", "quotes", "shares"),
        )

    async def fetch_account(self, account: AccountRef, access_token: str, now: datetime) -> AccountStats:
        node = account.external_id or "me"
        body = await self.graph_get(f"/{node}/threads_insights", {"metric": "followers_count"}, access_token, now)
        return AccountStats(AccountMetrics(followers=first_present(insight_values(body), "followers_count")), body)
