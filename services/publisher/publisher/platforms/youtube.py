"""YouTube Data API v3: resumable upload; the session URI is saved before the bytes go up."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx

from publisher.domain import CaptionRules, first_line
from publisher.platforms.base import (
    Checkpoint,
    Http,
    Identity,
    Json,
    LiveQuota,
    MediaFetcher,
    NotLive,
    PlatformError,
    Published,
    Session,
    body_of,
    refresh_grant,
)
from shared.credentials import OAuthTokens
from shared.events import AccountStatus, ErrorCode, Platform, PostDue, PostFormat, utc_now

PACIFIC = ZoneInfo("America/Los_Angeles")
RESUME_INCOMPLETE = 308


def next_pacific_midnight(now: datetime) -> datetime:
    local = now.astimezone(PACIFIC)
    return (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def youtube_error(response: httpx.Response) -> PlatformError:  # noqa: PLR0911
    body = body_of(response)
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    reasons = [str(e.get("reason")) for e in error.get("errors") or [] if isinstance(e, dict)]
    reason = reasons[0] if reasons else str(body.get("error") or "")
    message = f"{reason}: {error.get('message') or body.get('error_description') or response.reason_phrase}"
    status = response.status_code
    now = utc_now()

    def err(kind: ErrorCode, **kw: Any) -> PlatformError:
        return PlatformError(kind, message, status=status, detail=body, **kw)

    if status == 401 or reason == "authError":
        return err(ErrorCode.TOKEN_EXPIRED)
    if reason == "quotaExceeded":
        return err(ErrorCode.RATE_LIMITED, retry_at=next_pacific_midnight(now))
    if reason == "uploadLimitExceeded":  # the channel's daily upload cap: try again in a day
        return err(ErrorCode.RATE_LIMITED, retry_at=now + timedelta(days=1))
    if reason in ("rateLimitExceeded", "userRateLimitExceeded"):  # short-term throttling: back off a minute
        return err(ErrorCode.RATE_LIMITED, retry_at=now + timedelta(minutes=1))
    if reason == "forbidden" or status == 403:
        return err(
            ErrorCode.ACCOUNT_INACTIVE if reason == "insufficientPermissions" else ErrorCode.CONTENT_REJECTED,
            account_status=AccountStatus.REVOKED if reason == "insufficientPermissions" else None,
        )
    if status >= 500:
        return err(ErrorCode.NETWORK_ERROR)
    if status in (400, 404):
        return err(ErrorCode.CONTENT_REJECTED)
    return err(ErrorCode.UNKNOWN_ERROR)


def check(response: httpx.Response) -> Json:
    if response.status_code >= 400:
        raise youtube_error(response)
    return body_of(response)


class YouTube:
    platform: ClassVar[Platform] = Platform.YOUTUBE
    formats: ClassVar[frozenset[PostFormat]] = frozenset({PostFormat.VIDEO, PostFormat.REEL})
    caption_rules: ClassVar[CaptionRules] = CaptionRules(max_chars=5000, name="description")
    reconcilable: ClassVar[bool] = True
    resumable: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        fetch_media: MediaFetcher,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_url: str | None = None,
    ) -> None:
        self.http = Http(client, base_url)
        self.fetch_media = fetch_media
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_url = token_url or "/token"

    def content_problem(self, job: PostDue, profile: Mapping[str, Any]) -> str | None:
        if len(job.media) != 1 or job.media[0].type != "video":
            return "a YouTube upload needs exactly one video"
        title = job.options.get("title")
        if title is not None and not 0 < len(str(title)) <= 100:
            return f"the YouTube title has {len(str(title))} characters; 1 to 100 are allowed"
        if title is None and not job.caption.strip():
            return "a YouTube video needs a title (options.title) or a caption to take it from"
        return None

    def auth(self, session: Session) -> dict[str, str]:
        return {"Authorization": f"Bearer {session.access_token}"}

    def metadata(self, job: PostDue) -> Json:
        title = str(job.options.get("title") or first_line(job.caption, 100))
        description = job.caption
        if job.format is PostFormat.REEL and "#shorts" not in f"{title} {description}".lower():
            description = f"{description}\n#Shorts".strip()
        return {
            "snippet": {
                "title": title,
                "description": description,
                "categoryId": str(job.options.get("category_id", 22)),
            },
            "status": {
                "privacyStatus": str(job.options.get("privacy_status", "public")),
                "selfDeclaredMadeForKids": bool(job.options.get("made_for_kids", False)),
            },
        }

    async def publish(self, job: PostDue, session: Session, checkpoint: Checkpoint) -> Published:
        content = await self.fetch_media(job.media[0])
        mime = job.media[0].mime_type or "video/mp4"
        if "session_uri" not in checkpoint.saved:
            response = await self.http.call(
                "POST",
                "/upload/youtube/v3/videos",
                params={"uploadType": "resumable", "part": "snippet,status"},
                json=self.metadata(job),
                headers=self.auth(session)
                | {"X-Upload-Content-Length": str(len(content)), "X-Upload-Content-Type": mime},
            )
            check(response)
            location = response.headers.get("location")
            if not location:
                raise PlatformError(ErrorCode.UNKNOWN_ERROR, "YouTube started no upload session (no Location)")
            await checkpoint.save(session_uri=location, total=str(len(content)))
        return await self.upload(job, session, checkpoint, content, start=0)

    async def upload(
        self, job: PostDue, session: Session, checkpoint: Checkpoint, content: bytes, *, start: int
    ) -> Published:
        total = len(content)
        headers = self.auth(session) | {"Content-Range": f"bytes {start}-{total - 1}/{total}"}
        response = await self.http.call(
            "PUT", checkpoint.saved["session_uri"], content=content[start:], headers=headers, go_live=True
        )
        if response.status_code == RESUME_INCOMPLETE:
            raise PlatformError(ErrorCode.NETWORK_ERROR, "YouTube did not receive the whole video")
        return self.published(job, check(response))

    def published(self, job: PostDue, video: Json) -> Published:
        video_id = str(video["id"])
        short = job.format is PostFormat.REEL
        permalink = f"https://www.youtube.com/{'shorts/' if short else 'watch?v='}{video_id}"
        privacy = (video.get("status") or {}).get("privacyStatus")
        published = (video.get("snippet") or {}).get("publishedAt")
        when = datetime.fromisoformat(published.replace("Z", "+00:00")) if published else utc_now()
        return Published(video_id, permalink, when, visibility=privacy)

    async def reconcile(self, job: PostDue, session: Session, checkpoint: Checkpoint, since: datetime) -> Published:
        uri = checkpoint.saved.get("session_uri")
        if uri is None:
            raise NotLive("no upload session was started")
        total = checkpoint.saved.get("total", "*")
        headers = self.auth(session) | {"Content-Range": f"bytes */{total}"}
        response = await self.http.call("PUT", uri, headers=headers)
        if response.status_code == 404:
            raise NotLive("the upload session expired without a video")
        if response.status_code != RESUME_INCOMPLETE:
            return self.published(job, check(response))
        # The session has part of the bytes and no video yet: finish this very session.
        received = response.headers.get("range", "")
        start = int(received.rsplit("-", 1)[1]) + 1 if "-" in received else 0
        return await self.upload(job, session, checkpoint, await self.fetch_media(job.media[0]), start=start)

    async def whoami(self, access_token: str, profile: Mapping[str, Any]) -> Identity:
        response = await self.http.call(
            "GET",
            "/youtube/v3/channels",
            params={"mine": "true", "part": "id,snippet"},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        items = check(response).get("items") or []
        if not items:
            raise PlatformError(ErrorCode.ACCOUNT_INACTIVE, "the token has no YouTube channel")
        return Identity(str(items[0]["id"]), (items[0].get("snippet") or {}).get("title"))

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        form = {"client_id": self.client_id, "client_secret": self.client_secret}
        return await refresh_grant(self.http, self.token_url, tokens, form=form, read_scopes=True)

    async def live_quota(self, session: Session) -> LiveQuota | None:
        return None
