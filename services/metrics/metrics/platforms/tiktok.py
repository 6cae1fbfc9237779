"""TikTok video metrics: `POST /v2/video/query/?fields=...` with `{"filters":{"video_ids":[...]}}`.

Quirks: errors may arrive with HTTP 200, so `error.code` decides; a video that is still
processing, private or removed is simply absent from `videos` (no data, not zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from metrics.domain import first_present
from metrics.platforms.base import (
    HttpPlatform,
    Insights,
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


@dataclass
class TikTokInsights(HttpPlatform):
    platform = Platform.TIKTOK

    async def fetch(self, post: PostRef, access_token: str, now: datetime) -> Insights:
        response = await self.call(
            "POST",
            "/v2/video/query/",
            params={"fields": FIELDS},
            json={"filters": {"video_ids": [post.remote_id]}},
            headers={"Authorization": f"Bearer {access_token}"},
        )
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
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        assert isinstance(data, dict)
        videos = [v for v in data.get("videos") or [] if isinstance(v, dict) and str(v.get("id")) == post.remote_id]
        if not videos:
            note = "TikTok returned no data for this video (still processing, private or removed)"
            return Insights(CanonicalMetrics(), body, status="not_enough_data", note=note)
        video = videos[0]
        metrics = CanonicalMetrics(
            views=first_present(video, "view_count"),
            likes=first_present(video, "like_count"),
            comments=first_present(video, "comment_count"),
            shares=first_present(video, "share_count"),
        )
        return Insights(metrics, body)

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        return await self.oauth2_refresh(
            tokens, self.oauth.token_url or "/v2/oauth/token/", client_id_field="client_key"
        )
