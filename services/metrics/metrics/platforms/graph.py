"""Meta's Graph API conventions, shared by Instagram, Threads and Facebook Pages: the insights
edge, its error body, and the codes that mean throttling, a bad token or a missing post."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx

from metrics.platforms.base import (
    HttpPlatform,
    Insights,
    Json,
    PermanentError,
    PostGone,
    PostRef,
    RateLimited,
    TokenRejected,
    TransientError,
    token_response,
)
from shared.credentials import OAuthTokens
from shared.events import CanonicalMetrics, Platform

# Graph codes that mean "slow down" (app, user, page, custom and business-use-case throttling).
THROTTLING = frozenset({4, 17, 32, 613, 80001, 80002, 80004})
TOKEN_INVALID = 190
NOT_ENOUGH_VIEWERS_CODE = 10
TRANSIENT = frozenset({1, 2})
NOT_FOUND_SUBCODE = 33


def insight_values(body: Json) -> dict[str, Any]:
    """`{"data":[{"name","values":[{"value"}]}|{"name","total_value":{"value"}}]}` as {name: value}."""
    values: dict[str, Any] = {}
    for entry in body.get("data") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        total = entry.get("total_value")
        if isinstance(total, dict) and "value" in total:
            values[entry["name"]] = total["value"]
            continue
        series = entry.get("values")
        if isinstance(series, list) and series and isinstance(series[-1], dict):
            values[entry["name"]] = series[-1].get("value")
    return values


@dataclass
class GraphInsights(HttpPlatform):
    platform: ClassVar[Platform]
    metric_names: ClassVar[tuple[str, ...]]

    def map(self, values: dict[str, Any]) -> CanonicalMetrics:
        raise NotImplementedError

    async def fetch(self, post: PostRef, access_token: str, now: datetime) -> Insights:
        response = await self.call(
            "GET",
            f"/{post.remote_id}/insights",
            params={"metric": ",".join(self.metric_names)},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        body = self.body(response)
        if response.status_code >= 400 or "error" in body:
            not_enough = self.errors(response, body, now)
            return Insights(CanonicalMetrics(), body, status="not_enough_data", note=not_enough)
        return Insights(self.map(insight_values(body)), body)

    async def graph_get(self, path: str, params: dict[str, str], access_token: str, now: datetime) -> Json:
        """GET a Graph node or edge; every error raises, a "no data yet" one included."""
        response = await self.call("GET", path, params=params, headers={"Authorization": f"Bearer {access_token}"})
        body = self.body(response)
        if response.status_code >= 400 or "error" in body:
            raise PermanentError(self.errors(response, body, now), detail=body)
        return body

    def errors(self, response: httpx.Response, body: Json, now: datetime) -> str:
        """Raise for the error in `body`; return the platform's words when it only means "no data yet"."""
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        assert isinstance(error, dict)
        code, subcode = error.get("code"), error.get("error_subcode")
        message = str(error.get("message") or f"HTTP {response.status_code}")
        detail = {"error": error}
        if code == TOKEN_INVALID or response.status_code == 401:
            raise TokenRejected(message, detail=detail)
        if code in THROTTLING or response.status_code == 429:
            raise RateLimited(message, retry_at=self.regain_access_at(response, now), detail=detail)
        if code == NOT_ENOUGH_VIEWERS_CODE and "not enough viewers" in message.lower():
            return message
        if subcode == NOT_FOUND_SUBCODE or response.status_code == 404:
            raise PostGone(message, detail=detail)
        if code in TRANSIENT or error.get("is_transient") or response.status_code >= 500:
            raise TransientError(message, detail=detail)
        raise PermanentError(message, detail=detail)

    @staticmethod
    def regain_access_at(response: httpx.Response, now: datetime) -> datetime | None:
        """Meta's usage headers say, in minutes, when a throttled app or page may call again."""
        for header in ("x-business-use-case-usage", "x-app-usage", "x-ad-account-usage"):
            raw = response.headers.get(header)
            if not raw:
                continue
            try:
                usage = json.loads(raw)
            except ValueError:
                continue
            entries = [e for v in usage.values() if isinstance(v, list) for e in v if isinstance(e, dict)]
            minutes = [e.get("estimated_time_to_regain_access") for e in entries]
            waits = [m for m in minutes if isinstance(m, int) and m > 0]
            if waits:
                return now + timedelta(minutes=max(waits))
        return None


@dataclass
class GraphLongLivedRefresh(GraphInsights):
    """Instagram and Threads: a still-valid long-lived token buys a new one (no refresh token)."""

    refresh_grant: ClassVar[str]

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        response = await self.call(
            "GET",
            "/refresh_access_token",
            params={"grant_type": self.refresh_grant},
            headers={"Authorization": f"Bearer {tokens.access_token.get_secret_value()}"},
        )
        return token_response(response, tokens, self.body(response))
