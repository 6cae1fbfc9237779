"""Pinterest API v5: POST /v5/pins to a board (image, multiple images, or a video registered through
/v5/media, uploaded and processed first)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from publisher.domain import CaptionRules, first_line, media_count_problem
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
    generic_error,
    refresh_grant,
    same_text,
    wait_until,
)
from shared.credentials import OAuthTokens
from shared.events import ErrorCode, MediaRef, Platform, PostDue, PostFormat, utc_now


def pinterest_error(response: httpx.Response) -> PlatformError:
    body = body_of(response)
    message = f"{body.get('code')}: {body.get('message') or response.reason_phrase}"
    status = response.status_code
    if status == 401:
        return PlatformError(ErrorCode.TOKEN_EXPIRED, message, status=status, detail=body)
    if status == 429:
        retry_at = utc_now() + timedelta(minutes=15)
        return PlatformError(ErrorCode.RATE_LIMITED, message, status=status, detail=body, retry_at=retry_at)
    if status >= 500:
        return PlatformError(ErrorCode.NETWORK_ERROR, message, status=status, detail=body)
    if status in (400, 403, 404, 422):
        return PlatformError(ErrorCode.CONTENT_REJECTED, message, status=status, detail=body)
    return PlatformError(ErrorCode.UNKNOWN_ERROR, message, status=status, detail=body)


def check(response: httpx.Response) -> Json:
    if response.status_code >= 400:
        raise pinterest_error(response)
    return body_of(response)


def board_of(job: PostDue, profile: Mapping[str, Any]) -> str | None:
    board = job.options.get("board_id") or profile.get("board_id")
    return str(board) if board else None


def cover_of(job: PostDue) -> str | None:
    """A video pin's cover: options.cover_image_url, else the image that follows the video."""
    cover = job.options.get("cover_image_url")
    return str(cover) if cover else next((m.url for m in job.media if m.type == "image"), None)


class Pinterest:
    platform: ClassVar[Platform] = Platform.PINTEREST
    formats: ClassVar[frozenset[PostFormat]] = frozenset({PostFormat.POST, PostFormat.CAROUSEL, PostFormat.VIDEO})
    caption_rules: ClassVar[CaptionRules] = CaptionRules(max_chars=800, name="description")
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
        client_secret: str | None = None,
        token_url: str | None = None,
    ) -> None:
        self.http = Http(client, base_url)
        self.fetch_media = fetch_media
        self.polling = polling or Polling()
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_url = token_url or "/v5/oauth/token"

    def content_problem(self, job: PostDue, profile: Mapping[str, Any]) -> str | None:  # noqa: PLR0911 - one return per rule
        if board_of(job, profile) is None:
            return "a pin needs a board: options.board_id or the account's profile board_id"
        title = job.options.get("title")
        if title is not None and len(str(title)) > 100:
            return f"the pin title has {len(str(title))} characters; at most 100 are allowed"
        if job.format is PostFormat.VIDEO:
            if [m.type for m in job.media] not in (["video"], ["video", "image"]):
                return "a video pin takes one video, optionally followed by its cover image"
            if cover_of(job) is None:
                return "a video pin needs a cover image: an image after the video or options.cover_image_url"
            return None
        if any(m.type != "image" for m in job.media):
            return "an image pin takes images only; use the video format for a video pin"
        if job.format is PostFormat.CAROUSEL:
            return media_count_problem(len(job.media), low=2, high=5, what="a multi-image pin")
        if len(job.media) != 1:
            return "a pin needs exactly one image"
        return None

    def title(self, job: PostDue) -> str:
        return str(job.options.get("title") or first_line(job.caption, 100))

    async def publish(self, job: PostDue, session: Session, checkpoint: Checkpoint) -> Published:
        source: Json
        if job.format is PostFormat.VIDEO:
            media_id = await self.video(job, session, checkpoint)
            source = {"source_type": "video_id", "media_id": media_id, "cover_image_url": cover_of(job)}
        elif job.format is PostFormat.CAROUSEL:
            source = {"source_type": "multiple_image_urls", "items": [{"url": m.url} for m in job.media]}
        else:
            source = {"source_type": "image_url", "url": job.media[0].url}
        body: Json = {
            "board_id": board_of(job, session.profile),
            "title": self.title(job),
            "description": job.caption,
            "media_source": source,
        }
        for key in ("link", "alt_text"):
            if job.options.get(key):
                body[key] = str(job.options[key])
        headers = {"Authorization": f"Bearer {session.access_token}"}
        pin = check(await self.http.call("POST", "/v5/pins", json=body, headers=headers, go_live=True))
        return self.published(pin)

    async def video(self, job: PostDue, session: Session, checkpoint: Checkpoint) -> str:
        """The media id of the uploaded video once Pinterest has processed it; saved once uploaded."""
        media_id = checkpoint.saved.get("media_id")
        if media_id is None:
            media_id = await self.upload(job.media[0], session)
            await checkpoint.save(media_id=media_id)
        headers = {"Authorization": f"Bearer {session.access_token}"}

        async def processed() -> bool:
            status = check(await self.http.call("GET", f"/v5/media/{media_id}", headers=headers)).get("status")
            if status == "failed":
                raise PlatformError(ErrorCode.CONTENT_REJECTED, f"Pinterest could not process video {media_id}")
            return status == "succeeded"

        await wait_until(processed, every=self.polling.every, within=self.polling.timeout, what="the Pinterest video")
        return media_id

    async def upload(self, media: MediaRef, session: Session) -> str:
        content = await self.fetch_media(media)
        headers = {"Authorization": f"Bearer {session.access_token}"}
        registered = check(await self.http.call("POST", "/v5/media", json={"media_type": "video"}, headers=headers))
        # A presigned storage form: its fields authorise the upload, so no bearer token goes along.
        fields = {key: str(value) for key, value in (registered.get("upload_parameters") or {}).items()}
        files = {"file": ("video", content, media.mime_type or "video/mp4")}
        response = await self.http.call("POST", str(registered["upload_url"]), data=fields, files=files)
        if response.status_code >= 400:
            raise generic_error(response)
        return str(registered["media_id"])

    @staticmethod
    def published(pin: Json) -> Published:
        created = pin.get("created_at")
        when = datetime.fromisoformat(str(created)).replace(tzinfo=UTC) if created else utc_now()
        return Published(str(pin["id"]), f"https://www.pinterest.com/pin/{pin['id']}/", when)

    async def reconcile(self, job: PostDue, session: Session, checkpoint: Checkpoint, since: datetime) -> Published:
        board = board_of(job, session.profile)
        headers = {"Authorization": f"Bearer {session.access_token}"}
        pins = check(
            await self.http.call("GET", f"/v5/boards/{board}/pins", params={"page_size": "100"}, headers=headers)
        )
        horizon = since - timedelta(minutes=5)
        for pin in pins.get("items") or []:
            found = self.published(pin)
            matches = same_text(str(pin.get("description") or ""), job.caption) and pin.get("title") == self.title(job)
            if matches and found.published_at >= horizon:
                return found
        # Pinterest has no duplicate signal, and a board listing may lag: a person decides.
        raise PlatformError(
            ErrorCode.PUBLISH_UNCONFIRMED, "the pin is not on the board; Pinterest offers no other check"
        )

    async def whoami(self, access_token: str, profile: Mapping[str, Any]) -> Identity:
        response = await self.http.call("GET", "/v5/user_account", headers={"Authorization": f"Bearer {access_token}"})
        body = check(response)
        return Identity(str(body.get("id") or body["username"]), body.get("username"))

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        if self.client_id and self.client_secret:
            return await refresh_grant(self.http, self.token_url, tokens, auth=(self.client_id, self.client_secret))
        return await refresh_grant(self.http, self.token_url, tokens)

    async def live_quota(self, session: Session) -> LiveQuota | None:
        return None
