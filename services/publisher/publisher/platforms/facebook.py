"""Facebook Pages via the Graph API: feed posts, photos, multi-photo posts, videos, reels and stories."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from publisher.domain import CaptionRules, media_count_problem
from publisher.platforms.base import (
    Checkpoint,
    Http,
    Identity,
    Json,
    LiveQuota,
    NotLive,
    PlatformError,
    Published,
    Session,
    expires_at,
    same_text,
)
from publisher.platforms.graph import bearer, graph_error, parse_graph_time
from shared.credentials import OAuthTokens
from shared.events import ErrorCode, Platform, PostDue, PostFormat, utc_now

DUPLICATE_POST = 506


def check(response: httpx.Response) -> Json:
    if response.status_code < 400:
        body = response.json()
        return body if isinstance(body, dict) else {}
    error = graph_error(response)
    usage = response.headers.get("x-business-use-case-usage")
    if error.code is ErrorCode.RATE_LIMITED and usage:
        error.retry_at = _regain_access(usage)
    raise error


def _regain_access(header: str) -> datetime | None:
    """Business Use Case usage: minutes until the page may call again."""
    try:
        entries = [e for values in json.loads(header).values() for e in values]
        minutes = max(int(e.get("estimated_time_to_regain_access") or 0) for e in entries)
    except (ValueError, AttributeError, TypeError):
        return None
    return utc_now() + timedelta(minutes=minutes) if minutes else None


class Facebook:
    platform: ClassVar[Platform] = Platform.FACEBOOK
    formats: ClassVar[frozenset[PostFormat]] = frozenset(
        {PostFormat.POST, PostFormat.CAROUSEL, PostFormat.VIDEO, PostFormat.REEL, PostFormat.STORY}
    )
    caption_rules: ClassVar[CaptionRules] = CaptionRules(max_chars=63_206, name="message")
    reconcilable: ClassVar[bool] = True
    resumable: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, client: httpx.AsyncClient, *, base_url: str) -> None:
        self.http = Http(client, base_url)

    def content_problem(self, job: PostDue, profile: Mapping[str, Any]) -> str | None:  # noqa: PLR0911 - one return per rule
        videos = [m for m in job.media if m.type == "video"]
        if job.format in (PostFormat.VIDEO, PostFormat.REEL) and len(videos) != 1:
            return f"a Facebook {job.format.value} needs exactly one video"
        if job.format is PostFormat.STORY and len(job.media) != 1:
            return "a Facebook story needs exactly one photo or video"
        if job.format is PostFormat.CAROUSEL:
            if videos:
                return "a Facebook multi-photo post takes photos only"
            return media_count_problem(len(job.media), low=2, high=10, what="a multi-photo post")
        if job.format is PostFormat.POST and (videos or len(job.media) > 1):
            return "a Facebook post takes at most one photo; use carousel or video"
        if job.format is PostFormat.POST and not (job.caption or job.media or job.options.get("link")):
            return "a Facebook post needs a message, a link or a photo"
        return None

    async def publish(self, job: PostDue, session: Session, checkpoint: Checkpoint) -> Published:
        page = session.external_id
        match job.format:
            case PostFormat.REEL:
                return await self._reel(job, session, checkpoint)
            case PostFormat.STORY:
                return await self._story(job, session, checkpoint)
            case PostFormat.VIDEO:
                data = {"file_url": job.media[0].url, "description": job.caption}
                body = check(
                    await self.http.call("POST", f"/{page}/videos", data=data, headers=bearer(session), go_live=True)
                )
                return await self._video_published(session, str(body["id"]))
            case PostFormat.CAROUSEL:
                attached = []
                for media in job.media:
                    data = {"url": media.url, "published": "false"}
                    response = await self.http.call("POST", f"/{page}/photos", data=data, headers=bearer(session))
                    attached.append(str(check(response)["id"]))
                data = {"message": job.caption} | {
                    f"attached_media[{i}]": json.dumps({"media_fbid": media_id}) for i, media_id in enumerate(attached)
                }
                body = check(
                    await self.http.call("POST", f"/{page}/feed", data=data, headers=bearer(session), go_live=True)
                )
                return await self._post_published(session, str(body["id"]))
        if job.media:
            data = {"url": job.media[0].url, "caption": job.caption}
            body = check(
                await self.http.call("POST", f"/{page}/photos", data=data, headers=bearer(session), go_live=True)
            )
            return await self._post_published(session, str(body.get("post_id") or body["id"]))
        data = {"message": job.caption} | ({"link": str(job.options["link"])} if job.options.get("link") else {})
        body = check(await self.http.call("POST", f"/{page}/feed", data=data, headers=bearer(session), go_live=True))
        return await self._post_published(session, str(body["id"]))

    async def _reel(self, job: PostDue, session: Session, checkpoint: Checkpoint) -> Published:
        finish = {"video_state": "PUBLISHED", "description": job.caption}
        video_id, _ = await self._upload_video(job, session, checkpoint, "video_reels", finish)
        return await self._video_published(session, video_id)

    async def _upload_video(
        self, job: PostDue, session: Session, checkpoint: Checkpoint, edge: str, finish: dict[str, str]
    ) -> tuple[str, Json]:
        """`upload_phase=start` on `edge` (video_reels, video_stories), upload by `file_url`, then
        `upload_phase=finish`; the video id is saved before the finish that makes it live."""
        page = session.external_id
        video_id = checkpoint.saved.get("video_id")
        if video_id is None:
            response = await self.http.call(
                "POST", f"/{page}/{edge}", data={"upload_phase": "start"}, headers=bearer(session)
            )
            body = check(response)
            video_id = str(body["video_id"])
            await checkpoint.save(video_id=video_id, upload_url=str(body["upload_url"]))
        upload_url = checkpoint.saved.get("upload_url") or f"/video-upload/{video_id}"
        headers = {"Authorization": f"OAuth {session.access_token}", "file_url": job.media[0].url}
        check(await self.http.call("POST", upload_url, headers=headers))
        data = {"upload_phase": "finish", "video_id": video_id} | finish
        body = check(await self.http.call("POST", f"/{page}/{edge}", data=data, headers=bearer(session), go_live=True))
        return video_id, body

    async def _story(self, job: PostDue, session: Session, checkpoint: Checkpoint) -> Published:
        """A photo story from a photo uploaded unpublished, or a video story (start, upload, finish).
        Stories carry no text: the Stories API takes none."""
        if job.media[0].type == "video":
            _, body = await self._upload_video(job, session, checkpoint, "video_stories", {})
            return await self._post_published(session, str(body["post_id"]))
        page = session.external_id
        photo_id = checkpoint.saved.get("photo_id")
        if photo_id is None:
            data = {"url": job.media[0].url, "published": "false"}
            response = await self.http.call("POST", f"/{page}/photos", data=data, headers=bearer(session))
            photo_id = str(check(response)["id"])
            await checkpoint.save(photo_id=photo_id)
        response = await self.http.call(
            "POST", f"/{page}/photo_stories", data={"photo_id": photo_id}, headers=bearer(session), go_live=True
        )
        return await self._post_published(session, str(check(response)["post_id"]))

    async def _reconcile_story(self, job: PostDue, session: Session, checkpoint: Checkpoint) -> Published:
        media_id = checkpoint.saved.get("video_id") or checkpoint.saved.get("photo_id")
        if media_id is None:
            raise NotLive("no photo or video was uploaded for the story, so none was published")
        params = {"fields": "post_id,media_id,url,creation_time"}
        response = await self.http.call(
            "GET", f"/{session.external_id}/stories", params=params, headers=bearer(session)
        )
        for story in check(response).get("data") or []:
            if str(story.get("media_id")) == media_id:
                created = story.get("creation_time")
                when = datetime.fromtimestamp(int(created), UTC) if created else utc_now()
                return Published(str(story["post_id"]), story.get("url"), when)
        # Not on the page. Facebook takes an uploaded photo or video into one story only, so
        # publishing the same one again cannot make a second story.
        return await self._story(job, session, checkpoint)

    async def _reel_state(self, session: Session, video_id: str) -> Json:
        fields = {"fields": "post_id,permalink_url,status"}
        return check(await self.http.call("GET", f"/{video_id}", params=fields, headers=bearer(session)))

    async def _video_published(self, session: Session, video_id: str) -> Published:
        try:
            body = await self._reel_state(session, video_id)
        except PlatformError:
            return Published(video_id, None)
        return Published(str(body.get("post_id") or video_id), body.get("permalink_url"))

    async def _post_published(self, session: Session, post_id: str) -> Published:
        try:
            params = {"fields": "permalink_url,created_time"}
            body = check(await self.http.call("GET", f"/{post_id}", params=params, headers=bearer(session)))
        except PlatformError:
            return Published(post_id, None)
        return Published(post_id, body.get("permalink_url"), parse_graph_time(body.get("created_time")) or utc_now())

    async def reconcile(self, job: PostDue, session: Session, checkpoint: Checkpoint, since: datetime) -> Published:
        if job.format is PostFormat.STORY:
            return await self._reconcile_story(job, session, checkpoint)
        video_id = checkpoint.saved.get("video_id")
        if job.format is PostFormat.REEL and video_id is not None:
            state = await self._reel_state(session, video_id)
            if state.get("post_id"):
                return Published(str(state["post_id"]), state.get("permalink_url"))
            # The reel was never finished: finishing the same upload publishes it once.
            return await self._reel(job, session, checkpoint)
        found = await self._find(job, session, since)
        if found is not None:
            return found
        if not job.caption.strip():
            raise PlatformError(ErrorCode.PUBLISH_UNCONFIRMED, "no message to recognise the post by on the page")
        # Not on the page: send again; Facebook answers 506 if the first one did go through after all.
        try:
            return await self.publish(job, session, checkpoint)
        except PlatformError as exc:
            if exc.detail.get("code") != DUPLICATE_POST:
                raise
        found = await self._find(job, session, since)
        if found is None:
            raise PlatformError(ErrorCode.PUBLISH_UNCONFIRMED, "Facebook reports a duplicate the page does not list")
        return found

    async def _find(self, job: PostDue, session: Session, since: datetime) -> Published | None:
        params = {"fields": "id,message,created_time,permalink_url", "limit": "100"}
        response = await self.http.call(
            "GET", f"/{session.external_id}/published_posts", params=params, headers=bearer(session)
        )
        horizon = since - timedelta(minutes=5)
        for item in check(response).get("data") or []:
            when = parse_graph_time(item.get("created_time"))
            if same_text(str(item.get("message") or ""), job.caption) and (when is None or when >= horizon):
                return Published(str(item["id"]), item.get("permalink_url"), when or utc_now())
        return None

    async def whoami(self, access_token: str, profile: Mapping[str, Any]) -> Identity:
        response = await self.http.call("GET", "/me", headers={"Authorization": f"Bearer {access_token}"})
        body = check(response)
        return Identity(str(body["id"]), body.get("name"))

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        params = {"grant_type": "fb_exchange_token", "fb_exchange_token": tokens.access_token.get_secret_value()}
        body = check(await self.http.call("GET", "/oauth/access_token", params=params))
        return OAuthTokens(
            access_token=body["access_token"],
            refresh_token=tokens.refresh_token,
            expires_at=expires_at(body.get("expires_in")),
            scopes=tokens.scopes,
            token_type=tokens.token_type,
        )

    async def live_quota(self, session: Session) -> LiveQuota | None:
        return None
