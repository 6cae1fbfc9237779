"""X post metrics: `GET /2/tweets/{id}?tweet.fields=public_metrics[,non_public_metrics]`.

Quirks: non-public metrics (impressions seen by the author's app, link clicks) exist only for
posts up to 30 days old, so they are asked for only then; a missing post comes back as HTTP 200
with an `errors` list; 429 carries `x-rate-limit-reset` (epoch seconds), no Retry-After.
Account stats: `GET /2/users/me?user.fields=public_metrics` (the token's own user).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from metrics.domain import AccountMetrics, first_present, sum_present
from metrics.platforms.base import AccountRef, AccountStats, HttpPlatform, Insights, PermanentError, PostGone, PostRef
from shared.credentials import OAuthTokens
from shared.events import CanonicalMetrics, Platform

NON_PUBLIC_FOR = timedelta(days=30)


@dataclass
class XInsights(HttpPlatform):
    platform = Platform.X

    async def fetch(self, post: PostRef, access_token: str, now: datetime) -> Insights:
        fields = ["public_metrics"]
        if now - post.published_at <= NON_PUBLIC_FOR:
            fields.append("non_public_metrics")
        response = await self.call(
            "GET",
            f"/2/tweets/{post.remote_id}",
            params={"tweet.fields": ",".join(fields)},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        body = self.body(response)
        self.generic_errors(response, body, now)
        data = body.get("data")
        if not isinstance(data, dict):
            raise PostGone("X does not know this post", detail=body)
        public = data.get("public_metrics") if isinstance(data.get("public_metrics"), dict) else {}
        private = data.get("non_public_metrics") if isinstance(data.get("non_public_metrics"), dict) else {}
        assert isinstance(public, dict)
        assert isinstance(private, dict)
        private_views = first_present(private, "impression_count")  # a real 0 must not fall through
        metrics = CanonicalMetrics(
            views=private_views if private_views is not None else first_present(public, "impression_count"),
            likes=first_present(public, "like_count"),
            comments=first_present(public, "reply_count"),
            shares=sum_present(public, "retweet_count", "quote_count"),
            saves=first_present(public, "bookmark_count"),
            clicks=first_present(private, "url_link_clicks"),
        )
        return Insights(metrics, body)

    async def fetch_account(self, account: AccountRef, access_token: str, now: datetime) -> AccountStats:
        response = await self.call(
            "GET",
            "/2/users/me",
            params={"user.fields": "public_metrics"},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        body = self.body(response)
        self.generic_errors(response, body, now)
        data = body.get("data")
        if not isinstance(data, dict):
            raise PermanentError("X returned no user", detail=body)
        public = data.get("public_metrics") if isinstance(data.get("public_metrics"), dict) else {}
        assert isinstance(public, dict)
        # like_count is the likes the user gave, not received: not an account metric here.
        metrics = AccountMetrics(
            followers=first_present(public, "followers_count"), posts=first_present(public, "tweet_count")
        )
        return AccountStats(metrics, body)

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        # X rotates refresh tokens: the new one must be stored, which the caller does.
        return await self.oauth2_refresh(tokens, self.oauth.token_url or "/2/oauth2/token")
