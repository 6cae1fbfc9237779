"""Instagram media insights: `GET /{media-id}/insights?metric=...`.

Quirks: data lags up to 48 h; low-reach media answer "(#10) Not enough viewers" (no data, not
zero); `impressions` and `plays` are deprecated in favour of `views` and are only a fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metrics.domain import first_present
from metrics.platforms.graph import GraphLongLivedRefresh
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
