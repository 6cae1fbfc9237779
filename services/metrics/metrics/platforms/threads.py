"""Threads media insights: `GET /{media}/insights?metric=views,likes,replies,reposts,quotes,shares`.

Replies are comments; reposts and quotes are shares (with the `shares` metric where given).
Threads reports no reach, saves or clicks per post: those stay None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metrics.domain import first_present, sum_present
from metrics.platforms.graph import GraphLongLivedRefresh
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
