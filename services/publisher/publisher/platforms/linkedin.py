"""LinkedIn Posts API: POST /rest/posts with a pinned LinkedIn-Version; 422 DUPLICATE_POST names the urn.
An image or video is uploaded first (Images / Videos API) and the post names its urn."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

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
from shared.events import AccountStatus, ErrorCode, MediaRef, Platform, PostDue, PostFormat, utc_now

DEFAULT_VERSION = "202601"
POST_URN = re.compile(r"urn:li:(?:share|ugcPost):\d+")


def next_utc_midnight(now: datetime) -> datetime:
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def linkedin_error(response: httpx.Response) -> PlatformError:
    body = body_of(response)
    code = str(body.get("code") or "")
    message = f"{code}: {body.get('message') or response.reason_phrase}" if code else str(body.get("message") or "")
    status = response.status_code

    def err(kind: ErrorCode, **kw: Any) -> PlatformError:
        return PlatformError(kind, message, status=status, detail=body, **kw)

    if status == 401:
        revoked = code == "REVOKED_ACCESS_TOKEN"
        return err(ErrorCode.TOKEN_EXPIRED, account_status=AccountStatus.REVOKED if revoked else None)
    if status == 429:
        return err(ErrorCode.RATE_LIMITED, retry_at=next_utc_midnight(utc_now()))
    if status == 426:
        return err(ErrorCode.UNKNOWN_ERROR)  # our pinned API version was retired: configuration, not content
    if status >= 500:
        return err(ErrorCode.NETWORK_ERROR)
    if status in (400, 403, 422):
        return err(ErrorCode.CONTENT_REJECTED)
    return err(ErrorCode.UNKNOWN_ERROR)


def check(response: httpx.Response) -> Json:
    if response.status_code >= 400:
        raise linkedin_error(response)
    return body_of(response)


def duplicate_of(error: PlatformError) -> str | None:
    if error.status != 422 or error.detail.get("code") != "DUPLICATE_POST":
        return None
    match = POST_URN.search(str(error.detail.get("message") or ""))
    return match.group(0) if match else None


class LinkedIn:
    platform: ClassVar[Platform] = Platform.LINKEDIN
    formats: ClassVar[frozenset[PostFormat]] = frozenset({PostFormat.POST, PostFormat.VIDEO})
    caption_rules: ClassVar[CaptionRules] = CaptionRules(max_chars=3000, name="commentary")
    reconcilable: ClassVar[bool] = True
    resumable: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        fetch_media: MediaFetcher,
        polling: Polling | None = None,
        api_version: str = DEFAULT_VERSION,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_url: str | None = None,
    ) -> None:
        self.http = Http(client, base_url)
        self.fetch_media = fetch_media
        self.polling = polling or Polling()
        self.api_version = api_version
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_url = token_url or "/oauth/v2/accessToken"

    def content_problem(self, job: PostDue, profile: Mapping[str, Any]) -> str | None:
        if not job.caption.strip():
            return "a LinkedIn post needs commentary"
        kinds = [m.type for m in job.media]
        if job.format is PostFormat.VIDEO and kinds != ["video"]:
            return "a LinkedIn video post needs exactly one video"
        if job.format is PostFormat.POST and kinds not in ([], ["image"]):
            return "a LinkedIn post takes at most one image; use the video format for a video"
        if job.media and job.options.get("link"):
            return "a LinkedIn post carries a link or an image or video, not both"
        return None

    def headers(self, session: Session) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {session.access_token}",
            "LinkedIn-Version": self.api_version,
            "X-Restli-Protocol-Version": "2.0.0",
        }

    def author(self, session: Session) -> str:
        return str(session.profile.get("author_urn") or f"urn:li:person:{session.external_id}")

    async def publish(self, job: PostDue, session: Session, checkpoint: Checkpoint) -> Published:
        media_urn = checkpoint.saved.get("media_urn")
        if job.media and media_urn is None:
            media_urn = await self.upload(job.media[0], session)
            await checkpoint.save(media_urn=media_urn)
        if media_urn and job.media[0].type == "video":
            await self.wait_available(session, media_urn)
        body: Json = {
            "author": self.author(session),
            "commentary": job.caption,
            "visibility": str(job.options.get("visibility", "PUBLIC")),
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        if media_urn:
            body["content"] = {"media": {"id": media_urn, "title": str(job.options.get("title", ""))}}
        elif job.options.get("link"):
            body["content"] = {
                "article": {"source": str(job.options["link"]), "title": str(job.options.get("link_title", ""))}
            }
        response = await self.http.call("POST", "/rest/posts", json=body, headers=self.headers(session), go_live=True)
        if response.status_code >= 400:
            raise linkedin_error(response)
        urn = response.headers.get("x-restli-id") or response.headers.get("x-linkedin-id")
        if not urn:
            raise PlatformError(ErrorCode.UNKNOWN_ERROR, "LinkedIn created a post but named no urn")
        return self.published(urn)

    async def upload(self, media: MediaRef, session: Session) -> str:
        """The image or video urn, once its bytes are up (and, for a video, the upload finalized)."""
        content = await self.fetch_media(media)
        owner = self.author(session)
        if media.type == "image":
            image = await self.action("/rest/images", "initializeUpload", {"owner": owner}, session)
            await self.put(str(image["uploadUrl"]), content, session)
            return str(image["image"])
        request = {"owner": owner, "fileSizeBytes": len(content), "uploadCaptions": False, "uploadThumbnail": False}
        video = await self.action("/rest/videos", "initializeUpload", request, session)
        # One PUT per instructed byte range; each answers an ETag that finalizing lists in order.
        etags = []
        for part in video["uploadInstructions"]:
            chunk = content[int(part["firstByte"]) : int(part["lastByte"]) + 1]
            etags.append((await self.put(str(part["uploadUrl"]), chunk, session)).headers.get("etag", ""))
        finalize = {"video": video["video"], "uploadToken": video.get("uploadToken", ""), "uploadedPartIds": etags}
        await self.action("/rest/videos", "finalizeUpload", finalize, session)
        return str(video["video"])

    async def action(self, path: str, action: str, request: Json, session: Session) -> Json:
        response = await self.http.call(
            "POST", path, params={"action": action}, json={f"{action}Request": request}, headers=self.headers(session)
        )
        return check(response).get("value") or {}

    async def put(self, url: str, content: bytes, session: Session) -> httpx.Response:
        headers = self.headers(session) | {"Content-Type": "application/octet-stream"}
        response = await self.http.call("PUT", url, content=content, headers=headers)
        check(response)
        return response

    async def wait_available(self, session: Session, urn: str) -> None:
        """A video is processed after finalizing; a post may name it once it is AVAILABLE."""

        async def available() -> bool:
            response = await self.http.call("GET", f"/rest/videos/{quote(urn, safe='')}", headers=self.headers(session))
            status = check(response).get("status")
            if status == "PROCESSING_FAILED":
                raise PlatformError(ErrorCode.CONTENT_REJECTED, f"LinkedIn could not process video {urn}")
            return status == "AVAILABLE"

        await wait_until(available, every=self.polling.every, within=self.polling.timeout, what="the LinkedIn video")

    @staticmethod
    def published(urn: str, when: datetime | None = None) -> Published:
        return Published(urn, f"https://www.linkedin.com/feed/update/{urn}/", when or utc_now())

    async def reconcile(self, job: PostDue, session: Session, checkpoint: Checkpoint, since: datetime) -> Published:
        found = await self.find(job, session, since)
        if found is not None:
            return found
        # Not listed: send again; LinkedIn answers 422 DUPLICATE_POST naming the urn if it did go live.
        try:
            return await self.publish(job, session, checkpoint)
        except PlatformError as exc:
            urn = duplicate_of(exc)
            if urn is None:
                raise
            return self.published(urn)

    async def find(self, job: PostDue, session: Session, since: datetime) -> Published | None:
        params = {"q": "author", "author": self.author(session), "count": "50"}
        response = await self.http.call("GET", "/rest/posts", params=params, headers=self.headers(session))
        if response.status_code >= 400:
            raise linkedin_error(response)
        horizon = (since - timedelta(minutes=5)).timestamp() * 1000
        for item in body_of(response).get("elements") or []:
            at = float(item.get("publishedAt") or item.get("createdAt") or 0)
            if same_text(str(item.get("commentary") or ""), job.caption) and at >= horizon:
                return self.published(str(item["id"]), datetime.fromtimestamp(at / 1000, UTC))
        return None

    async def whoami(self, access_token: str, profile: Mapping[str, Any]) -> Identity:
        response = await self.http.call("GET", "/v2/userinfo", headers={"Authorization": f"Bearer {access_token}"})
        if response.status_code >= 400:
            raise linkedin_error(response)
        body = body_of(response)
        return Identity(str(body["sub"]), body.get("name"))

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        form = {"client_id": self.client_id, "client_secret": self.client_secret}
        return await refresh_grant(self.http, self.token_url, tokens, form=form)

    async def live_quota(self, session: Session) -> LiveQuota | None:
        return None
