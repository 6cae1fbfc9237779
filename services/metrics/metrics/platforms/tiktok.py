"""TikTok video metrics: `POST /v2/video/query/?fields=...` with `{"filters":{"video_ids":[...]}}`,
up to 20 videos of one account per call; account stats: `GET /v2/user/info/?fields=...`.

Quirks: errors may arrive with HTTP 200, so `error.code` decides; a video that is still
processing, private or removed is simply absent from `videos` (no data, not zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from metrics.domain import AccountMetrics, first_present
from metrics.platforms.base import (
    AccountRef,
    AccountStats,
    HttpPlatform,
    Insights,
    Json,
    PermanentError,
    PostRef,
    RateLimited,
    TokenRejected,
    TransientError,
    retry_after,
)
from shared.credentials import OAuthTokens
from shared.events import CanonicalMetrics, Platform

FIELDS = "id,view_count,like_count,comment_count,share_count"
USER_FIELDS = "open_id,follower_count,following_count,likes_count,video_count"


@dataclass
class TikTokInsights(HttpPlatform):
    platform = Platform.TIKTOK
    batch_size = 20  # video ids per /v2/video/query/ call

    async def fetch(self, post: PostRef, access_token: str, now: datetime) -> Insights:
        (insights,) = await self.fetch_many([post], access_token, now)
        return insights

    async def fetch_many(self, posts: Sequence[PostRef], access_token: str, now: datetime) -> list[Insights]:
        response = await self.call(
            "POST",
            "/v2/video/query/",
            params={"fields": FIELDS},
            json={"filters": {"video_ids": [post.remote_id for post in posts]}},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        body = self.checked(response, now)
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        assert isinstance(data, dict)
        videos = {str(v.get("id")): v for v in data.get("videos") or [] if isinstance(v, dict)}
        return [self.insights(videos.get(post.remote_id), body) for post in posts]

    @staticmethod
    def insights(video: dict[str, Any] | None, body: Json) -> Insights:
        # Each post keeps its own video as the raw payload, not its batch neighbours'.
        raw = {"data": {"videos": [video] if video else []}, "error": body.get("error")}
        if video is None:
            note = "TikTok returned no data for this video (still processing, private or removed)"
            return Insights(CanonicalMetrics(), raw, status="not_enough_data", note=note)
        metrics = CanonicalMetrics(
            views=first_present(video, "view_count"),
            likes=first_present(video, "like_count"),
            comments=first_present(video, "comment_count"),
            shares=first_present(video, "share_count"),
        )
        return Insights(metrics, raw)

    async def fetch_account(self, account: AccountRef, access_token: str, now: datetime) -> AccountStats:
        response = await self.call(
            "GET",
            "/v2/user/info/",
            params={"fields": USER_FIELDS},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        body = self.checked(response, now)
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        assert isinstance(data, dict)
        user = data.get("user") if isinstance(data.get("user"), dict) else {}
        assert isinstance(user, dict)
        metrics = AccountMetrics(
            followers=first_present(user, "follower_count"),
            posts=first_present(user, "video_count"),
            likes=first_present(user, "likes_count"),
        )
        return AccountStats(metrics, body)

    def checked(self, response: httpx.Response, now: datetime) -> Json:
        """The body, once `error.code` (which may come with HTTP 200) says the call worked."""
        body = self.body(response)
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        assert isinstance(error, dict)
        code = error.get("code", "ok")
        message = str(error.get("message") or code)
        if code in ("access_token_invalid", "access_token_expired") or response.status_code == 401:
            raise TokenRejected(message, detail=body)
        if code == "rate_limit_exceeded" or response.status_code == 429:
            raise RateLimited(message, retry_at=retry_after(response, now), detail=body)
        if response.status_code >= 500 or code == "internal_error":
            raise TransientError(message, detail=body)
        if code != "ok" or response.status_code >= 400:
            raise PermanentError(message, detail=body)
        return body

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        return await self.oauth2_refresh(
            tokens, self.oauth.token_url or "/v2/oauth/token/", client_id_field="client_key"
        )
