"""Telegram Bot API: sendMessage / sendPhoto / sendVideo / sendMediaGroup to a channel or group."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from publisher.domain import CaptionRules, caption_problem, media_count_problem
from publisher.platforms.base import (
    Checkpoint,
    Http,
    Identity,
    Json,
    LiveQuota,
    PlatformError,
    Published,
    Session,
    body_of,
)
from shared.credentials import OAuthTokens
from shared.events import AccountStatus, ErrorCode, Platform, PostDue, PostFormat, utc_now

MEDIA_CAPTION = CaptionRules(max_chars=1024)


class ChatMigrated(Exception):
    def __init__(self, chat_id: str) -> None:
        super().__init__(chat_id)
        self.chat_id = chat_id


def telegram_error(response: httpx.Response) -> PlatformError:
    body = body_of(response)
    message = str(body.get("description") or response.reason_phrase)
    status = int(body.get("error_code") or response.status_code)
    parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    assert isinstance(parameters, dict)
    if status == 429:
        retry_at = utc_now() + timedelta(seconds=float(parameters.get("retry_after") or 5))
        return PlatformError(ErrorCode.RATE_LIMITED, message, status=status, detail=body, retry_at=retry_at)
    if status == 401:
        return PlatformError(ErrorCode.TOKEN_EXPIRED, message, status=status, detail=body)
    if status == 403:  # the bot was removed from the channel: someone has to add it back
        return PlatformError(
            ErrorCode.ACCOUNT_INACTIVE, message, status=status, detail=body, account_status=AccountStatus.REVOKED
        )
    if status >= 500:
        return PlatformError(ErrorCode.NETWORK_ERROR, message, status=status, detail=body)
    if status == 400:
        return PlatformError(ErrorCode.CONTENT_REJECTED, message, status=status, detail=body)
    return PlatformError(ErrorCode.UNKNOWN_ERROR, message, status=status, detail=body)


def chat_of(job: PostDue, profile: Mapping[str, Any]) -> str | None:
    chat = job.options.get("chat_id") or profile.get("chat_id")
    return str(chat) if chat else None


class Telegram:
    platform: ClassVar[Platform] = Platform.TELEGRAM
    formats: ClassVar[frozenset[PostFormat]] = frozenset({PostFormat.POST, PostFormat.CAROUSEL})
    caption_rules: ClassVar[CaptionRules] = CaptionRules(max_chars=4096, name="text")
    reconcilable: ClassVar[bool] = False  # the Bot API cannot list a channel's messages
    resumable: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, client: httpx.AsyncClient, *, base_url: str) -> None:
        self.http = Http(client, base_url)

    def content_problem(self, job: PostDue, profile: Mapping[str, Any]) -> str | None:
        if chat_of(job, profile) is None:
            return "a Telegram post needs a chat: options.chat_id or the account's profile chat_id"
        if job.media and (why := caption_problem(job.caption, MEDIA_CAPTION)):
            return f"{why} (Telegram captions under media)"
        if job.format is PostFormat.CAROUSEL:
            return media_count_problem(len(job.media), low=2, high=10, what="a Telegram album")
        if len(job.media) > 1:
            return "a Telegram post takes at most one photo or video; use carousel for an album"
        if not job.media and not job.caption.strip():
            return "a Telegram message needs text"
        return None

    async def publish(self, job: PostDue, session: Session, checkpoint: Checkpoint) -> Published:
        chat = chat_of(job, session.profile)
        assert chat is not None
        try:
            return await self.send(job, session, chat)
        except ChatMigrated as migrated:  # refused, so nothing went live: send to the supergroup
            return await self.send(job, session, migrated.chat_id)

    async def send(self, job: PostDue, session: Session, chat: str) -> Published:
        method, params = self.request(job, chat)
        response = await self.http.call("POST", f"/bot{session.access_token}/{method}", data=params, go_live=True)
        body = body_of(response)
        if not body.get("ok"):
            migrate = (body.get("parameters") or {}).get("migrate_to_chat_id")
            if migrate is not None:
                raise ChatMigrated(str(migrate))
            raise telegram_error(response)
        result = body["result"]
        first: Json = result[0] if isinstance(result, list) else result
        message_id = first["message_id"]
        chat_info = first.get("chat") or {}
        username = chat_info.get("username") or (chat[1:] if chat.startswith("@") else None)
        permalink = f"https://t.me/{username}/{message_id}" if username else None
        when = datetime.fromtimestamp(int(first["date"]), UTC) if first.get("date") else utc_now()
        return Published(f"{chat}:{message_id}", permalink, when)

    def request(self, job: PostDue, chat: str) -> tuple[str, dict[str, str]]:
        if job.format is PostFormat.CAROUSEL:
            items = [
                {"type": "video" if m.type == "video" else "photo", "media": m.url}
                | ({"caption": job.caption} if i == 0 and job.caption else {})
                for i, m in enumerate(job.media)
            ]
            return "sendMediaGroup", {"chat_id": chat, "media": json.dumps(items)}
        if job.media:
            media = job.media[0]
            kind = "video" if media.type == "video" else "photo"
            return f"send{kind.title()}", {"chat_id": chat, kind: media.url, "caption": job.caption}
        return "sendMessage", {"chat_id": chat, "text": job.caption}

    async def reconcile(self, job: PostDue, session: Session, checkpoint: Checkpoint, since: datetime) -> Published:
        raise PlatformError(
            ErrorCode.PUBLISH_UNCONFIRMED, "the Bot API offers no way to see whether the message was sent"
        )

    async def whoami(self, access_token: str, profile: Mapping[str, Any]) -> Identity:
        response = await self.http.call("GET", f"/bot{access_token}/getMe")
        body = body_of(response)
        if not body.get("ok"):
            raise telegram_error(response)
        return Identity(str(body["result"]["id"]), body["result"].get("username"))

    async def refresh(self, tokens: OAuthTokens) -> OAuthTokens:
        raise PlatformError(ErrorCode.TOKEN_EXPIRED, "bot tokens do not expire: a refused one was revoked")

    async def live_quota(self, session: Session) -> LiveQuota | None:
        return None
