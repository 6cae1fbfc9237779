"""TikTok Content Posting API: creator_info, init (direct post or drafts inbox), status fetch."""

from __future__ import annotations

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
    Polling,
    Published,
    Session,
    body_of,
    refresh_grant,
    wait_until,
)
from shared.credentials import OAuthTokens
from shared.events import AccountStatus, ErrorCode, Platform, PostDue, PostFormat, utc_now

PUBLIC = "PUBLIC_TO_EVERYONE"
PRIVATE = "SELF_ONLY"
DONE = ("PUBLISH_COMPLETE", "SEND_TO_USER_INBOX")


def tiktok_error(response: httpx.Response, body: Json) -> PlatformError:  # noqa: PLR0911
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    code = str(error.get("code") or "")
    message = f"{code}: {error.get('message') or response.reason_phrase}"
    status = response.status_code
    now = utc_now()

    def err(kind: ErrorCode, **kw: Any) -> PlatformError:
        return PlatformError(kind, message, status=status, detail=body, **kw)

    if code == "access_token_invalid":
        return err(ErrorCode.TOKEN_EXPIRED)
    if code == "scope_not_authorized":
        return err(ErrorCode.ACCOUNT_INACTIVE, account_status=AccountStatus.REVOKED)
    if code == "rate_limit_exceeded":
        return err(ErrorCode.RATE_LIMITED, retry_at=now + timedelta(minutes=1))
    if code == "spam_risk_too_many_posts":  # the creator's daily cap: try again tomorrow
        return err(ErrorCode.RATE_LIMITED, retry_at=now + timedelta(days=1))
    if code == "unaudited_client_can_only_post_to_private_accounts":
        return err(ErrorCode.ACCOUNT_INACTIVE, account_status=AccountStatus.PENDING_REVIEW)
    if code.startswith("spam_risk") or code in ("privacy_level_option_mismatch", "invalid_params"):
        return err(ErrorCode.CONTENT_REJECTED)
    if code == "internal_error" or status >= 500:
        return err(ErrorCode.NETWORK_ERROR)
    return err(ErrorCode.UNKNOWN_ERROR)


def check(response: httpx.Response) -> Json:
    """TikTok reports some errors with HTTP 200: `error.code` decides."""
    body = body_of(response)
    error = body.get("error")
    if response.status_code >= 400 or (isinstance(error, dict) and error.get("code") not in (None, "ok")):
        raise tiktok_error(response, body)
    data = body.get("data")
    return data if isinstance(data, dict) else {}


def wants_inbox(job: PostDue) -> bool:
    options = job.options
    return bool(options.get("tiktok_inbox") or options.get("inbox") or options.get("post_mode") == "inbox")


class TikTok:
    platform: ClassVar[Platform] = Platform.TIKTOK
    formats: ClassVar[frozenset[PostFormat]] = frozenset({PostFormat.REEL, PostFormat.VIDEO, PostFormat.CAROUSEL})
    caption_rules: ClassVar[CaptionRules] = CaptionRules(max_chars=2200, name="title")
    reconcilable: ClassVar[bool] = True
    resumable: ClassVar[frozenset[str]] = frozenset({"publish_id", "privacy", "username"})

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        polling: Polling | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_url: str | None = None,
    ) -> None:
        self.http = Http(client, base_url)
        self.polling = polling or Polling()
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_url = token_url or "/v2/oauth/token/"

    def content_problem(self, job: PostDue, profile: Mapping[str, Any]) -> str | None:
        if job.format is PostFormat.CAROUSEL:
            if any(m.type != "image" for m in job.media):
                return "a TikTok photo post takes images only"
            return media_count_problem(len(job.media), low=1, high=35, what="a TikTok photo post")
        if len(job.media) != 1 or job.media[0].type != "video":
            return "a TikTok video post needs exactly one video"
        return None

    def auth(self, session: Session) -> dict[str, str]:
        return {"Authorization": f"Bearer {session.access_token}"}

    async def creator_info(self, session: Session) -> Json:
        response = await self.http.call("POST", "/v2/post/publish/creator_info/query/", headers=self.auth(session))
        return check(response)

    def privacy(self, job: PostDue, offered: list[str]) -> str:
        wanted = str(job.options.get("privacy_level") or PUBLIC)
        if wanted in offered:
            return wanted
        if offered == [PRIVATE]:
            return PRIVATE  # an unaudited app can only post privately; the PostPublished says so
        raise PlatformError(
            ErrorCode.CONTENT_REJECTED, f"privacy_level {wanted} is not offered by this creator: {', '.join(offered)}"
        )

    async def publish(self, job: PostDue, session: Session, checkpoint: Checkpoint) -> Published:
        publish_id = checkpoint.saved.get("publish_id")
        if publish_id is None:
            info = await self.creator_info(session)
            inbox = wants_inbox(job)
            privacy = None if inbox else self.privacy(job, list(info.get("privacy_level_options") or []))
            username = str(info.get("creator_username") or session.username or "")
            await checkpoint.save(privacy=privacy or "inbox", username=username)
            path, body = self.init_request(job, inbox=inbox, privacy=privacy)
            response = await self.http.call("POST", path, json=body, headers=self.auth(session), go_live=True)
            publish_id = str(check(response)["publish_id"])
            await checkpoint.save(publish_id=publish_id)
        return await self.outcome(session, checkpoint, publish_id)

    def init_request(self, job: PostDue, *, inbox: bool, privacy: str | None) -> tuple[str, Json]:
        if job.format is PostFormat.CAROUSEL:
            post_info: Json = {"title": job.caption[:90], "description": job.caption}
            if privacy:
                post_info["privacy_level"] = privacy
            return "/v2/post/publish/content/init/", {
                "post_info": post_info,
                "source_info": {
                    "source": "PULL_FROM_URL",
                    "photo_images": [m.url for m in job.media],
                    "photo_cover_index": 0,
                },
                "post_mode": "MEDIA_UPLOAD" if inbox else "DIRECT_POST",
                "media_type": "PHOTO",
            }
        source = {"source": "PULL_FROM_URL", "video_url": job.media[0].url}
        if inbox:
            return "/v2/post/publish/inbox/video/init/", {"source_info": source}
        post_info = {
            "title": job.caption,
            "privacy_level": privacy,
            "disable_comment": bool(job.options.get("disable_comment", False)),
            "disable_duet": bool(job.options.get("disable_duet", False)),
            "disable_stitch": bool(job.options.get("disable_stitch", False)),
        }
        return "/v2/post/publish/video/init/", {"post_info": post_info, "source_info": source}

    async def status(self, session: Session, publish_id: str) -> Json:
        response = await self.http.call(
            "POST", "/v2/post/publish/status/fetch/", json={"publish_id": publish_id}, headers=self.auth(session)
        )
        return check(response)

    async def outcome(self, session: Session, checkpoint: Checkpoint, publish_id: str) -> Published:
        latest: Json = {}

        async def done() -> bool:
            latest.clear()
            latest.update(await self.status(session, publish_id))
            if latest.get("status") == "FAILED":
                raise PlatformError(
                    ErrorCode.CONTENT_REJECTED, f"TikTok could not publish: {latest.get('fail_reason')}", detail=latest
                )
            return latest.get("status") in DONE

        await wait_until(done, every=self.polling.every, within=self.polling.timeout, what="the TikTok post")
        privacy = checkpoint.saved.get("privacy")
        if latest["status"] == "SEND_TO_USER_INBOX":
            return Published(publish_id, None, visibility="inbox")
        public_ids = latest.get("publicaly_available_post_id") or []  # sic: TikTok's spelling
        visibility = {PUBLIC: "public", PRIVATE: "private"}.get(privacy or "", (privacy or "").lower() or None)
        if not public_ids:
            return Published(publish_id, None, visibility=visibility)
        video_id = str(public_ids[0])
        user = checkpoint.saved.get("username") or session.username
        permalink = f"https://www.tiktok.com/@{user}/video/{video_id}" if user else None
        return Published(video_id, permalink, visibility=visibility)

    async def reconcile(self, job: PostDue, session: Session, checkpoint: Checkpoint, since: datetime) -> Published:
        publish_id = checkpoint.saved.get("publish_id")
        if publish_id is None:
            raise PlatformError(
                ErrorCode.PUBLISH_UNCONFIRMED, "the init call's answer was lost before its publish_id was saved"
            )
        return await self.outcome(session, checkpoint, publish_id)

    async def whoami(self, access_token: str, profile: Mapping[str, Any]) -> Identity:
        response = await self.http.call(
            "GET",
            "/v2/user/info/",
            params={"fields": "open_id,username"},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        user = check(response).get("user") or {}
        return Identity(str(user["open_id"]), user.get("username"))

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        form = {"client_key": self.client_id, "client_secret": self.client_secret}
        return await refresh_grant(self.http, self.token_url, tokens, form=form, read_scopes=True)

    async def live_quota(self, session: Session) -> LiveQuota | None:
        return None
