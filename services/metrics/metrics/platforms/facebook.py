"""Facebook Page post insights: `GET /{post-id}/insights?metric=...`.

Meta removed most impression metrics in 2025 in favour of "media view" metrics; the old names
(`post_impressions`, `post_impressions_unique`) are read only as a fallback. Comments and shares
are not insights metrics, so they stay None here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metrics.domain import first_present
from metrics.platforms.base import token_response
from metrics.platforms.graph import GraphInsights
from shared.credentials import OAuthTokens
from shared.events import CanonicalMetrics, Platform


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

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        params = {"grant_type": "fb_exchange_token", "fb_exchange_token": tokens.access_token.get_secret_value()}
        if self.oauth.client_id:
            params["client_id"] = self.oauth.client_id
        if self.oauth.client_secret:
            params["client_secret"] = self.oauth.client_secret.get_secret_value()
        response = await self.call("GET", "/oauth/access_token", params=params)
        return token_response(response, tokens, self.body(response))
