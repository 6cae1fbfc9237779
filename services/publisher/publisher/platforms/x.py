"""X API v2: media upload (initialize/append/finalize), then POST /2/tweets (PLATFORMS.md)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from publisher.domain import CaptionRules
from publisher.platforms.base import (
    Checkpoint,
    Http,
    Identity,
    Json,
    LiveQuota,
    MediaFetcher,
    PlatformError,
    Polling,
    Published,
    Session,
    body_of,
    refresh_grant,
    same_text,
    wait_until,
)
from shared.credentials import OAuthTokens
from shared.events import ErrorCode, MediaRef, Platform, PostDue, PostFormat, utc_now

DUPLICATE = "duplicate content"
DAY = timedelta(days=1)


def _epoch(value: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC) if value else None
    except ValueError:
        return None


def user_quota(headers: httpx.Headers) -> LiveQuota | None:
    """`x-user-limit-24hour-*`: the user's posting budget, counted by X itself."""
    limit, remaining = headers.get("x-user-limit-24hour-limit"), headers.get("x-user-limit-24hour-remaining")
    if limit is None or remaining is None:
        return None
    return LiveQuota(
        used=max(0, int(limit) - int(remaining)),
        limit=int(limit),
        window=DAY,
        reset_at=_epoch(headers.get("x-user-limit-24hour-reset")),
    )


def x_error(response: httpx.Response) -> PlatformError:
    body = body_of(response)
    detail_text = str(body.get("detail") or body.get("title") or "")
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict) and errors[0].get("message"):
        detail_text = str(errors[0]["message"])
    status = response.status_code
    if status == 401:
        return PlatformError(ErrorCode.TOKEN_EXPIRED, detail_text or "Unauthorized", status=status, detail=body)
    if status == 429:
        headers = response.headers
        resets = [
            _epoch(headers.get(f"{prefix}-reset"))
            for prefix in ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour")
            if headers.get(f"{prefix}-remaining") == "0"
        ]
        retry_at = max((r for r in resets if r is not None), default=None)
        return PlatformError(
            ErrorCode.RATE_LIMITED,
            detail_text,
            status=status,
            detail=body,
            retry_at=retry_at,
            quota=user_quota(headers),
        )
    if status == 403:
        return PlatformError(ErrorCode.CONTENT_REJECTED, detail_text, status=status, detail=body)
    if status == 402:
        return PlatformError(ErrorCode.UNKNOWN_ERROR, detail_text or "credits depleted", status=status, detail=body)
    if status >= 500:
        return PlatformError(ErrorCode.NETWORK_ERROR, detail_text, status=status, detail=body)
    return PlatformError(ErrorCode.CONTENT_REJECTED, detail_text, status=status, detail=body)


def check(response: httpx.Response) -> Json:
    if response.status_code >= 400:
        raise x_error(response)
    return body_of(response)


def is_duplicate(error: PlatformError) -> bool:
    return error.status == 403 and DUPLICATE in error.message


class X:
    platform: ClassVar[Platform] = Platform.X
    formats: ClassVar[frozenset[PostFormat]] = frozenset({PostFormat.POST, PostFormat.CAROUSEL, PostFormat.VIDEO})
    caption_rules: ClassVar[CaptionRules] = CaptionRules(max_chars=280, name="text")
    reconcilable: ClassVar[bool] = True
    resumable: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        fetch_media: MediaFetcher,
        polling: Polling | None = None,
        client_id: str | None = None,
        token_url: str | None = None,
    ) -> None:
        self.http = Http(client, base_url)
        self.fetch_media = fetch_media
        self.polling = polling or Polling()
        self.client_id = client_id
        self.token_url = token_url or "/2/oauth2/token"

    def content_problem(self, job: PostDue, profile: Mapping[str, Any]) -> str | None:
        videos = [m for m in job.media if m.type == "video"]
        if job.format is PostFormat.VIDEO and (len(videos) != 1 or len(job.media) != 1):
            return "an X video post takes exactly one video"
        if videos and len(job.media) > 1:
            return "X takes one video or up to 4 photos per post, not both"
        if len(job.media) > 4:
            return f"X takes up to 4 photos per post; this post has {len(job.media)}"
        if not job.caption and not job.media:
            return "an X post needs text or media"
        return None

    def auth(self, session: Session) -> dict[str, str]:
        return {"Authorization": f"Bearer {session.access_token}"}

    async def publish(self, job: PostDue, session: Session, checkpoint: Checkpoint) -> Published:
        media_ids = [m for m in checkpoint.saved.get("media_ids", "").split(",") if m]
        if job.media and not media_ids:
            media_ids = [await self.upload(session, media) for media in job.media]
            await checkpoint.save(media_ids=",".join(media_ids))
        return await self.tweet(job, session, media_ids)

    async def tweet(self, job: PostDue, session: Session, media_ids: list[str]) -> Published:
        body: Json = {"text": job.caption}
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        if job.options.get("reply_to"):
            body["reply"] = {"in_reply_to_tweet_id": str(job.options["reply_to"])}
        response = await self.http.call("POST", "/2/tweets", json=body, headers=self.auth(session), go_live=True)
        data = check(response).get("data") or {}
        tweet_id = str(data["id"])
        return Published(tweet_id, self.permalink(session, tweet_id), quota=user_quota(response.headers))

    def permalink(self, session: Session, tweet_id: str) -> str:
        user = session.username or session.profile.get("username") or "i/web"
        return f"https://x.com/{user}/status/{tweet_id}"

    async def upload(self, session: Session, media: MediaRef) -> str:
        content = await self.fetch_media(media)
        video = media.type == "video"
        init = {
            "media_type": media.mime_type or ("video/mp4" if video else "image/jpeg"),
            "total_bytes": str(len(content)),
            "media_category": "tweet_video" if video else "tweet_image",
        }
        response = await self.http.call("POST", "/2/media/upload/initialize", json=init, headers=self.auth(session))
        media_id = str(check(response)["data"]["id"])
        files = {"media": ("media", content, init["media_type"])}
        check(
            await self.http.call(
                "POST",
                f"/2/media/upload/{media_id}/append",
                data={"segment_index": "0"},
                files=files,
                headers=self.auth(session),
            )
        )
        data = check(await self.http.call("POST", f"/2/media/upload/{media_id}/finalize", headers=self.auth(session)))
        if (data.get("data") or {}).get("processing_info"):

            async def processed() -> bool:
                params = {"command": "STATUS", "media_id": media_id}
                status = check(
                    await self.http.call("GET", "/2/media/upload", params=params, headers=self.auth(session))
                )
                state = ((status.get("data") or {}).get("processing_info") or {}).get("state")
                if state == "failed":
                    raise PlatformError(ErrorCode.CONTENT_REJECTED, f"X could not process media {media_id}")
                return state == "succeeded"

            await wait_until(processed, every=self.polling.every, within=self.polling.timeout, what="the X media")
        return media_id

    async def reconcile(self, job: PostDue, session: Session, checkpoint: Checkpoint, since: datetime) -> Published:
        found = await self.find(job, session, since)
        if found is not None:
            return found
        if not job.caption.strip():
            raise PlatformError(ErrorCode.PUBLISH_UNCONFIRMED, "a post without text cannot be recognised on X")
        # Not on the timeline: send again; X refuses a duplicate if the first one went through after all.
        media_ids = [m for m in checkpoint.saved.get("media_ids", "").split(",") if m]
        try:
            return await self.tweet(job, session, media_ids)
        except PlatformError as exc:
            if not is_duplicate(exc):
                raise
        found = await self.find(job, session, since)
        if found is None:
            raise PlatformError(ErrorCode.PUBLISH_UNCONFIRMED, "X reports a duplicate the timeline does not show")
        return found

    async def find(self, job: PostDue, session: Session, since: datetime) -> Published | None:
        params = {"max_results": "100", "tweet.fields": "created_at"}
        response = await self.http.call(
            "GET", f"/2/users/{session.external_id}/tweets", params=params, headers=self.auth(session)
        )
        horizon = since - timedelta(minutes=5)
        for item in check(response).get("data") or []:
            created = item.get("created_at")
            when = datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None
            if same_text(str(item.get("text") or ""), job.caption) and (when is None or when >= horizon):
                return Published(str(item["id"]), self.permalink(session, str(item["id"])), when or utc_now())
        return None

    async def whoami(self, access_token: str, profile: Mapping[str, Any]) -> Identity:
        response = await self.http.call("GET", "/2/users/me", headers={"Authorization": f"Bearer {access_token}"})
        data = check(response).get("data") or {}
        return Identity(str(data["id"]), data.get("username"))

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        # Single use: X rotates the refresh token on every refresh, and the grant keeps the new one.
        return await refresh_grant(
            self.http, self.token_url, tokens, form={"client_id": self.client_id}, read_scopes=True
        )

    async def live_quota(self, session: Session) -> LiveQuota | None:
        return None  # X reports it on every post's response headers instead
