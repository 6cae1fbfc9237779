"""Facebook Pages via the Graph API: feed posts, photos, multi-photo posts, videos and reels."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx

from publisher.domain import CaptionRules, media_count_problem
from publisher.platforms.base import (
    Checkpoint,
    Http,
    Identity,
    Json,
    LiveQuota,
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
        {PostFormat.POST, PostFormat.CAROUSEL, PostFormat.VIDEO, PostFormat.REEL}
    )
    caption_rules: ClassVar[CaptionRules] = CaptionRules(max_chars=63_206, name="message")
    reconcilable: ClassVar[bool] = True

    def __init__(self, client: httpx.AsyncClient, *, base_url: str) -> None:
        self.http = Http(client, base_url)

    def content_problem(self, job: PostDue, profile: Mapping[str, Any]) -> str | None:
        videos = [m for m in job.media if m.type == "video"]
        if job.format in (PostFormat.VIDEO, PostFormat.REEL) and len(videos) != 1:
            return f"a Facebook {job.format.value} needs exactly one video"
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
        page = session.external_id
        video_id = checkpoint.saved.get("video_id")
        if video_id is None:
            response = await self.http.call(
                "POST", f"/{page}/video_reels", data={"upload_phase": "start"}, headers=bearer(session)
            )
            body = check(response)
            video_id = str(body["video_id"])
            await checkpoint.save(video_id=video_id, upload_url=str(body["upload_url"]))
        upload_url = checkpoint.saved.get("upload_url") or f"/video-upload/{video_id}"
        headers = {"Authorization": f"OAuth {session.access_token}", "file_url": job.media[0].url}
        check(await self.http.call("POST", upload_url, headers=headers))
        finish = {
            "upload_phase": "finish",
            "video_id": video_id,
            "video_state": "PUBLISHED",
            "description": job.caption,
        }
        check(await self.http.call("POST", f"/{page}/video_reels", data=finish, headers=bearer(session), go_live=True))
        return await self._video_published(session, video_id)

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
