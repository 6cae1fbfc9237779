"""TikTok Content Posting API (base replaces https://open.tiktokapis.com)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tools.emulator.errors import Reason, Rejection
from tools.emulator.faults import Op
from tools.emulator.platforms.base import Json, Platform, as_str, json_response, read_json, read_params
from tools.emulator.state import Account, Emulator, Post

PRIVACY_LEVELS = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY"]
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
USER_STATS = ("follower_count", "following_count", "likes_count", "video_count")
VIDEO_FIELDS = ("id", "title", "create_time", "share_url", "view_count", "like_count", "comment_count", "share_count")


@dataclass(eq=False)
class Publish:
    id: str
    account: Account
    inbox: bool
    source: str  # PULL_FROM_URL | FILE_UPLOAD
    media_type: str  # VIDEO | PHOTO
    text: str
    privacy: str | None
    total_bytes: int = 0
    received_bytes: int = 0
    post: Post | None = None


def envelope(data: Json, status: int = 200, code: str = "ok", message: str = "") -> Response:
    error = {"code": code, "message": message, "log_id": secrets.token_hex(16)}
    return json_response({"data": data, "error": error}, status)


class TikTok(Platform):
    name = "tiktok"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.publishes: dict[str, Publish] = {}
        emulator.on_reset(self.publishes.clear)

    def routes(self) -> list[Route]:
        return [
            self.route("/v2/oauth/token/", self.token, ["POST"]),
            self.route("/v2/post/publish/creator_info/query/", self.creator_info, ["POST"]),
            self.route("/v2/post/publish/video/init/", self.video_init, ["POST"]),
            self.route("/v2/post/publish/inbox/video/init/", self.inbox_init, ["POST"]),
            self.route("/v2/post/publish/content/init/", self.content_init, ["POST"]),
            self.route("/v2/post/publish/status/fetch/", self.status_fetch, ["POST"]),
            self.route("/upload/{publish_id}", self.upload, ["PUT"]),
            self.route("/v2/video/query/", self.video_query, ["POST"]),
            self.route("/v2/user/info/", self.user_info, ["GET"]),
        ]

    def privacy_options(self, account: Account) -> list[str]:
        return PRIVACY_LEVELS if account.audited else ["SELF_ONLY"]

    def require_scope(self, account: Account, scope: str) -> None:
        if account.scopes and scope not in account.scopes:
            raise Rejection(Reason.SCOPE_MISSING)

    # handlers

    async def token(self, request: Request) -> Response:
        params = await read_params(request)
        await self.gate_open(request)
        if params.get("grant_type") != "refresh_token":
            raise Rejection(Reason.REFRESH_INVALID)
        account = self.emu.use_refresh_token(self.name, as_str(params.get("refresh_token")))
        now = self.emu.now()
        return json_response(
            {
                "access_token": account.access_token,
                "expires_in": round((account.access_expires_at or now + 86400) - now),
                "open_id": account.account_id,
                "refresh_expires_in": round((account.refresh_expires_at or now + 365 * 86400) - now),
                "refresh_token": account.refresh_token,
                "scope": ",".join(account.scopes),
                "token_type": "Bearer",
            }
        )

    async def creator_info(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        return envelope(
            {
                "creator_avatar_url": f"https://p16.tiktokcdn.example/{account.account_id}.jpeg",
                "creator_username": account.username,
                "creator_nickname": account.username.replace("_", " ").title(),
                "privacy_level_options": self.privacy_options(account),
                "comment_disabled": False,
                "duet_disabled": False,
                "stitch_disabled": False,
                "max_video_post_duration_sec": 600,
            }
        )

    def check_privacy(self, account: Account, post_info: Json) -> str:
        privacy = as_str(post_info.get("privacy_level"))
        if privacy not in self.privacy_options(account):
            unaudited = not account.audited and privacy in PRIVACY_LEVELS
            raise Rejection(Reason.PRIVACY_MISMATCH, detail={"unaudited": unaudited})
        return privacy

    def start(self, request: Request, publish: Publish, source_info: Json) -> Response:
        data: Json = {"publish_id": publish.id}
        if publish.source == "FILE_UPLOAD":
            publish.total_bytes = int(source_info.get("video_size") or 0)
            data["upload_url"] = f"{self.base_url(request)}/upload/{publish.id}"
        elif not (source_info.get("video_url") or source_info.get("photo_images")):
            raise Rejection(Reason.INVALID, "source_info needs video_url (or photo_images) for PULL_FROM_URL.")
        else:
            self.go_live(publish)
        self.publishes[publish.id] = publish
        return envelope(data)

    def new_publish(
        self, account: Account, *, inbox: bool, source: str, media: str, text: str, privacy: str | None
    ) -> Publish:
        if source not in ("PULL_FROM_URL", "FILE_UPLOAD"):
            raise Rejection(Reason.INVALID, "source_info.source must be PULL_FROM_URL or FILE_UPLOAD.")
        kind = "url" if source == "PULL_FROM_URL" else "file"
        publish_id = f"v_{'inbox' if inbox else 'pub'}_{kind}~v2-1.{7_300_000_000_000_000_000 + self.emu.next_id()}"
        return Publish(publish_id, account, inbox, source, media, text, privacy)

    async def video_init(self, request: Request) -> Response:
        body = await read_json(request)
        account = await self.gate(request, Op.PUBLISH)
        self.require_scope(account, "video.publish")
        post_info, source_info = body.get("post_info") or {}, body.get("source_info") or {}
        title = as_str(post_info.get("title"))
        if len(title) > 2200:
            raise Rejection(Reason.INVALID, "post_info.title is longer than 2200 characters.")
        privacy = self.check_privacy(account, post_info)
        source = as_str(source_info.get("source"))
        publish = self.new_publish(account, inbox=False, source=source, media="VIDEO", text=title, privacy=privacy)
        return self.start(request, publish, source_info)

    async def inbox_init(self, request: Request) -> Response:
        body = await read_json(request)
        account = await self.gate(request, Op.PUBLISH)
        self.require_scope(account, "video.upload")
        source_info = body.get("source_info") or {}
        source = as_str(source_info.get("source"))
        publish = self.new_publish(account, inbox=True, source=source, media="VIDEO", text="", privacy=None)
        return self.start(request, publish, source_info)

    async def content_init(self, request: Request) -> Response:
        body = await read_json(request)
        account = await self.gate(request, Op.PUBLISH)
        inbox = as_str(body.get("post_mode") or "DIRECT_POST") == "MEDIA_UPLOAD"
        self.require_scope(account, "video.upload" if inbox else "video.publish")
        post_info, source_info = body.get("post_info") or {}, body.get("source_info") or {}
        if as_str(body.get("media_type") or "PHOTO") != "PHOTO":
            raise Rejection(Reason.INVALID, "media_type must be PHOTO.")
        images = source_info.get("photo_images") or []
        if not 1 <= len(images) <= 35:
            raise Rejection(Reason.INVALID, "source_info.photo_images needs 1 to 35 URLs.")
        title, description = as_str(post_info.get("title")), as_str(post_info.get("description"))
        text = f"{title}\n{description}" if title and description else title or description
        privacy = None if inbox else self.check_privacy(account, post_info)
        source = as_str(source_info.get("source"))
        publish = self.new_publish(account, inbox=inbox, source=source, media="PHOTO", text=text, privacy=privacy)
        return self.start(request, publish, source_info)

    def go_live(self, publish: Publish) -> None:
        """The post exists from here: it finishes processing after the configured delay."""
        processing = self.emu.processing_for(self.name)
        video_id = str(7_400_000_000_000_000_000 + self.emu.next_id())
        account = publish.account
        publish.post = self.emu.record_post(
            account,
            video_id,
            publish.text,
            media_type=publish.media_type,
            permalink=f"https://www.tiktok.com/@{account.username}/{publish.media_type.lower()}/{video_id}",
            processing_s=processing.delay_s,
            final_status="failed" if processing.outcome != "ok" else ("inbox" if publish.inbox else "live"),
            privacy=publish.privacy,
            extra={"publish_id": publish.id, "audited": account.audited, "inbox": publish.inbox},
        )

    async def upload(self, request: Request) -> Response:
        publish = self.publishes.get(request.path_params["publish_id"])
        if publish is None or publish.source != "FILE_UPLOAD":
            raise Rejection(Reason.NOT_FOUND)
        await self.gate(request, Op.PREPARE, account=publish.account)
        if publish.post is not None:
            return Response(status_code=201)
        chunk = await request.body()
        match = CONTENT_RANGE.fullmatch(request.headers.get("content-range", ""))
        if match is None:
            complete = True
        else:
            end, total = int(match.group(2)), int(match.group(3))
            publish.received_bytes = max(publish.received_bytes, end + 1)
            complete = publish.received_bytes >= total
        publish.received_bytes = max(publish.received_bytes, len(chunk))
        if not complete:
            return Response(status_code=206)
        self.go_live(publish)
        return Response(status_code=201)

    async def status_fetch(self, request: Request) -> Response:
        body = await read_json(request)
        account = await self.gate(request, Op.READ)
        publish = self.publishes.get(as_str(body.get("publish_id")))
        if publish is None or publish.account is not account:
            raise Rejection(Reason.NOT_FOUND)
        post = publish.post
        data: Json = {}
        if post is None:
            data = {"status": "PROCESSING_UPLOAD", "uploaded_bytes": publish.received_bytes}
        else:
            status = post.status(self.emu.now())
            if status == "processing":
                downloading = publish.source == "PULL_FROM_URL"
                data = {"status": "PROCESSING_DOWNLOAD" if downloading else "PROCESSING_UPLOAD"}
            elif status == "failed":
                data = {"status": "FAILED", "fail_reason": "file_format_check_failed"}
            elif status == "inbox":
                data = {"status": "SEND_TO_USER_INBOX"}
            else:
                public = post.privacy == "PUBLIC_TO_EVERYONE"
                data = {
                    "status": "PUBLISH_COMPLETE",
                    "publicaly_available_post_id": [int(post.remote_id)] if public else [],
                }
            data["uploaded_bytes" if publish.source == "FILE_UPLOAD" else "downloaded_bytes"] = publish.total_bytes
        return envelope(data)

    async def video_query(self, request: Request) -> Response:
        body = await read_json(request)
        account = await self.gate(request, Op.READ)
        fields = [f for f in request.query_params.get("fields", "id").split(",") if f in VIDEO_FIELDS] or ["id"]
        ids = [as_str(i) for i in (body.get("filters") or {}).get("video_ids", [])]
        if not 1 <= len(ids) <= 20:
            raise Rejection(Reason.INVALID, "filters.video_ids needs 1 to 20 ids.")
        videos = []
        for video_id in ids:
            post = self.emu.post(self.name, video_id)
            if post is None or post.account_id != account.account_id or post.status(self.emu.now()) != "live":
                continue
            values: Json = {
                "id": post.remote_id,
                "title": post.text,
                "create_time": int(post.created_at),
                "share_url": post.permalink,
            }
            values |= {m: self.emu.metric(self.name, post.remote_id, m) for m in VIDEO_FIELDS[4:]}
            videos.append({f: values[f] for f in fields})
        return envelope({"videos": videos, "cursor": 0, "has_more": False})

    async def user_info(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        values: Json = {
            "open_id": account.account_id,
            "union_id": f"union{account.account_id}",
            "avatar_url": f"https://p16.tiktokcdn.example/{account.account_id}.jpeg",
            "display_name": account.username.replace("_", " ").title(),
            "username": account.username,
        }
        values |= {name: self.emu.account_metric(account, name) for name in USER_STATS}
        fields = [f for f in request.query_params.get("fields", "open_id").split(",") if f in values]
        return envelope({"user": {f: values[f] for f in fields or ["open_id"]}})

    def render(self, rejection: Rejection) -> Response:  # noqa: PLR0911 - one return per error shape
        r, msg = rejection.reason, rejection.message
        match r:
            case Reason.TOKEN_INVALID | Reason.TOKEN_EXPIRED | Reason.TOKEN_REVOKED:
                return envelope(
                    {}, 401, "access_token_invalid", "The access token is invalid or not found in the request."
                )
            case Reason.SCOPE_MISSING:
                return envelope({}, 401, "scope_not_authorized", "The user did not authorize the scope required.")
            case Reason.REFRESH_INVALID:
                body = {
                    "error": "invalid_grant",
                    "error_description": "Refresh token is invalid or expired.",
                    "log_id": secrets.token_hex(16),
                }
                return json_response(body, 400)
            case Reason.RATE_LIMITED:
                return envelope({}, 429, "rate_limit_exceeded", msg or "API rate limit exceeded.")
            case Reason.QUOTA_REACHED:  # arrives with HTTP 200: only error.code says it failed
                return envelope(
                    {}, 200, "spam_risk_too_many_posts", msg or "The daily post cap of the creator is reached."
                )
            case Reason.SPAM:
                return envelope(
                    {}, 200, "spam_risk_user_banned_from_posting", msg or "The user is banned from posting."
                )
            case Reason.SERVER_ERROR:
                return envelope({}, rejection.status or 500, "internal_error", msg or "Something went wrong.")
            case Reason.PRIVACY_MISMATCH if rejection.detail.get("unaudited"):
                return envelope(
                    {},
                    403,
                    "unaudited_client_can_only_post_to_private_accounts",
                    "Unaudited clients can only post with privacy_level SELF_ONLY.",
                )
            case Reason.PRIVACY_MISMATCH:
                return envelope(
                    {}, 400, "privacy_level_option_mismatch", "privacy_level is not one of the creator's options."
                )
            case Reason.NOT_FOUND:
                return envelope({}, 400, "invalid_publish_id", msg or "The publish_id does not exist.")
            case Reason.CONTENT_REJECTED:
                return envelope({}, 400, "invalid_params", msg or "The media does not meet TikTok's requirements.")
            case _:
                return envelope({}, 400, "invalid_params", msg or "Invalid parameters.")
