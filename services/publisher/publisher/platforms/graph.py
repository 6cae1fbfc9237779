"""Meta Graph API conventions shared by Instagram, Threads and Facebook Pages: the error body and
its codes, and the container flow Instagram and Threads share."""

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
    NotLive,
    PlatformError,
    Polling,
    Published,
    Session,
    body_of,
    expires_at,
    same_text,
    wait_until,
)
from shared.credentials import OAuthTokens
from shared.events import AccountStatus, ErrorCode, MediaRef, Platform, PostDue, PostFormat, utc_now

THROTTLING = {4, 17, 32, 613, 80001, 80002, 80004}
TRANSIENT = {1, 2}
SERVER_SUBCODES = {2207001, 2207003, 2207032}
REJECTING_SUBCODES = {2207004, 2207009, 2207052, 2207051}
PERMISSION = {10, *range(200, 300)}
# The container is still processing (error code, subcode).
NOT_READY_CODE, NOT_READY_SUBCODE = 9007, 2207027
# Container media types with nothing to process (Threads TEXT, a single IMAGE on either).
READY_AT_ONCE = frozenset({"TEXT", "IMAGE"})


def graph_error(response: httpx.Response) -> PlatformError:  # noqa: PLR0911 - one return per error class
    """Translate `{"error": {"message", "code", "error_subcode", "error_user_msg", ...}}`."""
    body = body_of(response)
    error: Json = body.get("error") if isinstance(body.get("error"), dict) else {}  # type: ignore[assignment]
    code = int(error.get("code") or 0)
    subcode = int(error.get("error_subcode") or 0)
    message = str(error.get("error_user_msg") or error.get("message") or response.reason_phrase)
    detail = {k: v for k, v in error.items() if k != "fbtrace_id"} | {"fbtrace_id": error.get("fbtrace_id")}
    status = response.status_code

    def err(kind: ErrorCode, **kw: Any) -> PlatformError:
        return PlatformError(kind, message, status=status, detail=detail, **kw)

    if code == 190:
        revoked = subcode == 460
        return err(ErrorCode.TOKEN_EXPIRED, account_status=AccountStatus.TOKEN_EXPIRED if not revoked else None)
    if code == 4 and subcode == 2207051:  # restricted as spam: do not retry
        return err(ErrorCode.CONTENT_REJECTED)
    if code == 9 or subcode == 2207042:  # publishing quota of the rolling window reached
        return err(ErrorCode.RATE_LIMITED)
    if code in THROTTLING:
        return err(ErrorCode.RATE_LIMITED)
    if subcode == 2207050:
        return err(ErrorCode.ACCOUNT_INACTIVE, account_status=AccountStatus.REVOKED)
    if code in PERMISSION:
        return err(ErrorCode.ACCOUNT_INACTIVE, account_status=AccountStatus.REVOKED)
    if code in TRANSIENT or subcode in SERVER_SUBCODES or code == NOT_READY_CODE or subcode == 2207020 or status >= 500:
        return err(ErrorCode.NETWORK_ERROR)
    if code in (506, 368, 36000, 9004, 100) or subcode in REJECTING_SUBCODES:
        return err(ErrorCode.CONTENT_REJECTED)
    return err(ErrorCode.UNKNOWN_ERROR)


def not_ready(error: PlatformError) -> bool:
    """The container is still processing: publishing it was refused."""
    return error.detail.get("code") == NOT_READY_CODE or error.detail.get("error_subcode") == NOT_READY_SUBCODE


def check(response: httpx.Response) -> Json:
    if response.status_code >= 400:
        raise graph_error(response)
    return body_of(response)


def bearer(session: Session) -> dict[str, str]:
    return {"Authorization": f"Bearer {session.access_token}"}


def parse_graph_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


class ContainerFlow:
    """Create a container, wait until it is FINISHED (text and single images: only if publishing
    it at once is refused as not ready), publish it, read the permalink.

    The container id is saved before the publish call. A container can be published once: on
    reconciliation its status says whether it went live (PUBLISHED) or not (FINISHED, which we then
    publish ourselves, safely, because the platform publishes a container only once)."""

    platform: ClassVar[Platform]
    container_edge: ClassVar[str]
    publish_edge: ClassVar[str]
    limit_edge: ClassVar[str]
    status_field: ClassVar[str]
    text_field: ClassVar[str]
    refresh_grant: ClassVar[str]
    max_children: ClassVar[int]
    formats: ClassVar[frozenset[PostFormat]]
    caption_rules: ClassVar[CaptionRules]
    reconcilable: ClassVar[bool] = True
    resumable: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, client: httpx.AsyncClient, *, base_url: str, polling: Polling | None = None) -> None:
        self.http = Http(client, base_url)
        self.polling = polling or Polling()

    # what differs

    def media_type(self, job: PostDue) -> str:
        raise NotImplementedError

    def child_params(self, media: MediaRef) -> Json:
        return {"is_carousel_item": "true"} | (
            {"media_type": "VIDEO", "video_url": media.url} if media.type == "video" else {"image_url": media.url}
        )

    def content_problem(self, job: PostDue, profile: Mapping[str, Any]) -> str | None:
        if job.format is PostFormat.CAROUSEL:
            return media_count_problem(len(job.media), low=2, high=self.max_children, what="a carousel")
        return None

    # flow

    async def publish(self, job: PostDue, session: Session, checkpoint: Checkpoint) -> Published:
        container = checkpoint.saved.get("container_id")
        if container is None:
            container = await self.create_container(job, session)
            await checkpoint.save(container_id=container)
            if self.media_type(job) in READY_AT_ONCE:
                # Text and single-image containers are nearly always publishable at once: one
                # status call fewer per post. "Not ready" (9007 / 2207027) is a refusal, nothing
                # went live, so we wait for FINISHED and publish as for any other container.
                try:
                    return await self.go_live(session, container)
                except PlatformError as exc:
                    if not not_ready(exc):
                        raise
        await self.wait_finished(session, container)
        return await self.go_live(session, container)

    async def create_container(self, job: PostDue, session: Session) -> str:
        params: Json = {"media_type": self.media_type(job), self.text_field: job.caption}
        if job.format is PostFormat.CAROUSEL:
            children = []
            for media in job.media:
                response = await self.http.call(
                    "POST",
                    f"/{session.external_id}/{self.container_edge}",
                    data=self.child_params(media),
                    headers=bearer(session),
                )
                children.append(str(check(response)["id"]))
            params["children"] = ",".join(children)
        elif job.media:
            first = job.media[0]
            params["video_url" if first.type == "video" else "image_url"] = first.url
        response = await self.http.call(
            "POST", f"/{session.external_id}/{self.container_edge}", data=params, headers=bearer(session)
        )
        return str(check(response)["id"])

    async def container_status(self, session: Session, container: str) -> str:
        response = await self.http.call(
            "GET", f"/{container}", params={"fields": self.status_field}, headers=bearer(session)
        )
        return str(check(response).get(self.status_field) or "")

    async def wait_finished(self, session: Session, container: str) -> None:
        async def finished() -> bool:
            status = await self.container_status(session, container)
            if status == "ERROR":
                raise PlatformError(ErrorCode.CONTENT_REJECTED, f"container {container} failed processing")
            if status == "EXPIRED":
                raise PlatformError(ErrorCode.NETWORK_ERROR, f"container {container} expired before publishing")
            return status in ("FINISHED", "PUBLISHED")

        await wait_until(finished, every=self.polling.every, within=self.polling.timeout, what="the container")

    async def go_live(self, session: Session, container: str) -> Published:
        response = await self.http.call(
            "POST",
            f"/{session.external_id}/{self.publish_edge}",
            data={"creation_id": container},
            headers=bearer(session),
            go_live=True,
        )
        media_id = str(check(response)["id"])
        return await self.published(session, media_id)

    async def published(self, session: Session, media_id: str) -> Published:
        try:
            response = await self.http.call(
                "GET", f"/{media_id}", params={"fields": "permalink,timestamp"}, headers=bearer(session)
            )
            body = check(response)
        except PlatformError:
            return Published(media_id, None)  # it is live; the permalink is a nicety
        return Published(media_id, body.get("permalink"), parse_graph_time(body.get("timestamp")) or utc_now())

    async def reconcile(self, job: PostDue, session: Session, checkpoint: Checkpoint, since: datetime) -> Published:
        container = checkpoint.saved.get("container_id")
        if container is None:
            raise NotLive("no container was created, so nothing was published")
        status = await self.container_status(session, container)
        if status == "PUBLISHED":
            return await self.find_published(job, session, since) or Published(f"container:{container}", None)
        if status in ("FINISHED", "IN_PROGRESS"):
            await self.wait_finished(session, container)
            return await self.go_live(session, container)
        if status == "EXPIRED":
            raise NotLive(f"container {container} expired unpublished")
        raise PlatformError(ErrorCode.CONTENT_REJECTED, f"container {container} status {status}")

    async def find_published(self, job: PostDue, session: Session, since: datetime) -> Published | None:
        """The newest of the account's recent media with this caption, published since the claim."""
        response = await self.http.call(
            "GET",
            f"/{session.external_id}/{self.container_edge}",
            params={"fields": f"id,{self.text_field},timestamp,permalink", "limit": "100"},
            headers=bearer(session),
        )
        horizon = since - timedelta(minutes=5)
        for item in check(response).get("data") or []:
            when = parse_graph_time(item.get("timestamp"))
            if same_text(str(item.get(self.text_field) or ""), job.caption) and (when is None or when >= horizon):
                return Published(str(item["id"]), item.get("permalink"), when or utc_now())
        return None

    # account

    async def whoami(self, access_token: str, profile: Mapping[str, Any]) -> Identity:
        response = await self.http.call(
            "GET", "/me", params={"fields": "id,username"}, headers={"Authorization": f"Bearer {access_token}"}
        )
        body = check(response)
        return Identity(str(body["id"]), body.get("username"))

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        """Long-lived tokens buy a new one while still valid; an expired one needs a reconnect."""
        response = await self.http.call(
            "GET",
            "/refresh_access_token",
            params={"grant_type": self.refresh_grant, "access_token": tokens.access_token.get_secret_value()},
        )
        body = check(response)
        return OAuthTokens(
            access_token=body["access_token"],
            refresh_token=tokens.refresh_token,
            expires_at=expires_at(body.get("expires_in")),
            scopes=tokens.scopes,
            token_type=tokens.token_type,
        )

    async def live_quota(self, session: Session) -> LiveQuota | None:
        response = await self.http.call(
            "GET",
            f"/{session.external_id}/{self.limit_edge}",
            params={"fields": "quota_usage,config"},
            headers=bearer(session),
        )
        data = check(response).get("data") or []
        if not data:
            return None
        entry = data[0]
        config = entry.get("config") or {}
        return LiveQuota(
            used=int(entry.get("quota_usage") or 0),
            limit=int(config.get("quota_total") or 0),
            window=timedelta(seconds=float(config.get("quota_duration") or 86400)),
        )
