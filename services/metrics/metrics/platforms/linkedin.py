"""LinkedIn post analytics: `GET /rest/memberCreatorPostAnalytics?q=entity&entity=(share:{urn})&queryType=...`,
one call per metric (impressions, members reached, reactions, comments, reshares).

Quirks: every call needs `LinkedIn-Version: YYYYMM` and retired versions answer 426; daily
limits are not published and reset at midnight UTC (429).
Account stats: an organization (the account's profile `author_urn` is `urn:li:organization:...`)
`GET /rest/networkSizes/{urn}?edgeType=COMPANY_FOLLOWED_BY_MEMBER` (firstDegreeSize, the
organization's follower total); a member `GET /rest/memberFollowersCount?q=me`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx

from metrics.domain import AccountMetrics, as_count, first_present
from metrics.platforms.base import (
    AccountRef,
    AccountStats,
    HttpPlatform,
    Insights,
    Json,
    PermanentError,
    PostRef,
    RateLimited,
    retry_after,
)
from shared.credentials import OAuthTokens
from shared.events import CanonicalMetrics, Platform

QUERY_TYPES = {
    "IMPRESSION": "views",
    "MEMBERS_REACHED": "reach",
    "REACTION": "likes",
    "COMMENT": "comments",
    "RESHARE": "shares",
}


def next_utc_midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(0), UTC)


@dataclass
class LinkedInInsights(HttpPlatform):
    platform = Platform.LINKEDIN
    version: str = "202511"

    async def fetch(self, post: PostRef, access_token: str, now: datetime) -> Insights:
        kind = "ugcPost" if post.remote_id.startswith("urn:li:ugcPost:") else "share"
        headers = self.headers(access_token)
        counts: dict[str, Any] = {}
        raw: dict[str, Any] = {}
        for query_type in QUERY_TYPES:
            response = await self.call(
                "GET",
                "/rest/memberCreatorPostAnalytics",
                params={
                    "q": "entity",
                    "entity": f"({kind}:{post.remote_id})",
                    "queryType": query_type,
                    "aggregation": "TOTAL",
                },
                headers=headers,
            )
            body = self.checked(response, now)
            raw[query_type] = body
            elements = [e for e in body.get("elements") or [] if isinstance(e, dict)]
            counts[query_type] = as_count(elements[0].get("count")) if elements else None
        metrics = CanonicalMetrics(**{name: counts.get(q) for q, name in QUERY_TYPES.items()})
        return Insights(metrics, raw)

    async def fetch_account(self, account: AccountRef, access_token: str, now: datetime) -> AccountStats:
        author = str(account.profile.get("author_urn") or "")
        if author.startswith("urn:li:organization:"):
            response = await self.call(
                "GET",
                f"/rest/networkSizes/{author}",
                params={"edgeType": "COMPANY_FOLLOWED_BY_MEMBER"},
                headers=self.headers(access_token),
            )
            body = self.checked(response, now)
            return AccountStats(AccountMetrics(followers=first_present(body, "firstDegreeSize")), body)
        response = await self.call(
            "GET", "/rest/memberFollowersCount", params={"q": "me"}, headers=self.headers(access_token)
        )
        body = self.checked(response, now)
        elements = [e for e in body.get("elements") or [] if isinstance(e, dict)]
        followers = first_present(elements[0], "memberFollowersCount") if elements else None
        return AccountStats(AccountMetrics(followers=followers), body)

    def headers(self, access_token: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {access_token}",
            "LinkedIn-Version": self.version,
            "X-Restli-Protocol-Version": "2.0.0",
        }

    def checked(self, response: httpx.Response, now: datetime) -> Json:
        body = self.body(response)
        if response.status_code == 429:
            retry_at = retry_after(response, now) or next_utc_midnight(now)
            raise RateLimited(str(body.get("message") or "LinkedIn throttled"), retry_at=retry_at, detail=body)
        if response.status_code == 426:
            raise PermanentError(f"LinkedIn-Version {self.version} is retired: {body.get('message')}", detail=body)
        if response.status_code == 403:
            raise PermanentError(str(body.get("message") or "access denied"), detail=body)
        self.generic_errors(response, body, now)
        return body

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        return await self.oauth2_refresh(tokens, self.oauth.token_url or "/oauth/v2/accessToken")
