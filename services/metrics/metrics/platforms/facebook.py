"""Facebook Page post insights: `GET /{post-id}/insights?metric=...`, then comments and shares
from the post object: `GET /{post-id}?fields=comments.summary(true).limit(0),shares,reactions...`.

Meta removed most impression metrics in 2025 in favour of "media view" metrics; the old names
(`post_impressions`, `post_impressions_unique`) are read only as a fallback. Comments and shares
are not insights metrics. Graph leaves `shares` out of the post when nobody has shared it, so its
absence is zero. Likes are the "Like" reactions from insights; only without that metric do they
fall back to the post's reactions summary (every reaction type).
Account stats: `GET /{page-id}?fields=followers_count,fan_count` (fan_count = page likes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from metrics.domain import AccountMetrics, as_count, first_present
from metrics.platforms.base import AccountRef, AccountStats, Insights, Json, PostRef, token_response
from metrics.platforms.graph import GraphInsights
from shared.credentials import OAuthTokens
from shared.events import CanonicalMetrics, Platform

POST_FIELDS = "comments.summary(true).limit(0),shares,reactions.summary(true).limit(0)"


def summary_total(body: Json, edge: str) -> int | None:
    """`{edge: {"data": [], "summary": {"total_count": N}}}` as N."""
    connection = body.get(edge)
    summary = connection.get("summary") if isinstance(connection, dict) else None
    return as_count(summary.get("total_count")) if isinstance(summary, dict) else None


def share_count(body: Json) -> int:
    shares = body.get("shares")
    count = as_count(shares.get("count")) if isinstance(shares, dict) else None
    return count or 0  # Graph omits `shares` when there are none


@dataclass
class FacebookInsights(GraphInsights):
    platform = Platform.FACEBOOK
    metric_names = ("post_media_view", "post_total_media_view_unique", "post_clicks", "post_reactions_like_total")

    def map(self, values: dict[str, Any]) -> CanonicalMetrics:
        return CanonicalMetrics(
            views=first_present(values, "post_media_view", "post_impressions"),
            reach=first_present(values, "post_total_media_view_unique", "post_impressions_unique"),
            likes=first_present(values, "post_reactions_like_total"),
            clicks=first_present(values, "post_clicks"),
        )

    async def fetch(self, post: PostRef, access_token: str, now: datetime) -> Insights:
        insights = await super().fetch(post, access_token, now)
        if insights.status != "ok":
            return insights
        counts = await self.graph_get(f"/{post.remote_id}", {"fields": POST_FIELDS}, access_token, now)
        likes = insights.metrics.likes
        metrics = insights.metrics.model_copy(
            update={
                "comments": summary_total(counts, "comments"),
                "shares": share_count(counts),
                "likes": likes if likes is not None else summary_total(counts, "reactions"),
            }
        )
        return Insights(metrics, insights.raw | {"post": counts})

    async def fetch_account(self, account: AccountRef, access_token: str, now: datetime) -> AccountStats:
        node = account.external_id or "me"
        page = await self.graph_get(f"/{node}", {"fields": "followers_count,fan_count"}, access_token, now)
        metrics = AccountMetrics(
            followers=first_present(page, "followers_count", "fan_count"),
            likes=first_present(page, "fan_count"),
        )
        return AccountStats(metrics, page)

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        params = {"grant_type": "fb_exchange_token", "fb_exchange_token": tokens.access_token.get_secret_value()}
        if self.oauth.client_id:
            params["client_id"] = self.oauth.client_id
        if self.oauth.client_secret:
            params["client_secret"] = self.oauth.client_secret.get_secret_value()
        response = await self.call("GET", "/oauth/access_token", params=params)
        return token_response(response, tokens, self.body(response))
