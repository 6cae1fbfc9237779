"""Pinterest API v5 (base replaces https://api.pinterest.com); `/media-upload` stands in for the
storage bucket that video uploads are posted to."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tools.emulator.errors import Reason, Rejection
from tools.emulator.faults import Op
from tools.emulator.platforms.base import Json, Platform, as_str, json_response, read_json, read_params
from tools.emulator.state import Account, Emulator, Outcome, Post

SOURCES = {"image_url": "url", "image_base64": "data", "multiple_image_urls": "items", "video_id": "media_id"}
METRICS = ("IMPRESSION", "SAVE", "PIN_CLICK", "OUTBOUND_CLICK")


def pin_error(status: int, code: int, message: str) -> Response:
    return json_response({"code": code, "message": message}, status)


@dataclass(eq=False)
class Media:
    """A video registered with POST /v5/media: registered, then processing once uploaded."""

    id: str
    account: Account
    signature: str
    uploaded_at: float | None = None
    ready_at: float = 0.0
    outcome: Outcome = "ok"

    def status(self, now: float) -> str:
        if self.uploaded_at is None:
            return "registered"
        if now < self.ready_at:
            return "processing"
        return "succeeded" if self.outcome == "ok" else "failed"


def form_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    """The parts of a multipart/form-data body by name (the stdlib parser; no extra dependency)."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not message.is_multipart():
        return {}
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name, payload = part.get_param("name", header="content-disposition"), part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields


class Pinterest(Platform):
    name = "pinterest"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.media: dict[str, Media] = {}
        emulator.on_reset(self.media.clear)

    def routes(self) -> list[Route]:
        return [
            self.route("/v5/media", self.register_media, ["POST"]),
            self.route("/v5/media/{media_id}", self.get_media, ["GET"]),
            self.route("/media-upload", self.upload_media, ["POST"]),
            self.route("/v5/oauth/token", self.token, ["POST"]),
            self.route("/v5/user_account", self.user_account, ["GET"]),
            self.route("/v5/pins", self.create_pin, ["POST"]),
            self.route("/v5/pins/{pin_id}", self.get_pin, ["GET"]),
            self.route("/v5/pins/{pin_id}/analytics", self.analytics, ["GET"]),
            self.route("/v5/boards/{board_id}/pins", self.board_pins, ["GET"]),
        ]

    async def token(self, request: Request) -> Response:
        params = await read_params(request)
        await self.gate_open(request)
        if params.get("grant_type") != "refresh_token":
            raise Rejection(Reason.REFRESH_INVALID)
        account = self.emu.use_refresh_token(self.name, as_str(params.get("refresh_token")))
        now = self.emu.now()
        body: Json = {
            "access_token": account.access_token,
            "token_type": "bearer",
            "expires_in": round((account.access_expires_at or now) - now),
            "scope": ",".join(account.scopes),
            "response_type": "refresh_token",
        }
        if account.rotates_refresh_token:
            body["refresh_token"] = account.refresh_token
            body["refresh_token_expires_in"] = round((account.refresh_expires_at or now) - now)
        return json_response(body)

    async def user_account(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        return json_response(
            {"id": account.account_id, "username": account.username, "account_type": "BUSINESS", "website_url": None}
            | self.account_counts(account)
        )

    def account_counts(self, account: Account) -> Json:
        names = ("follower_count", "following_count", "pin_count", "board_count", "monthly_views")
        return {name: self.emu.account_metric(account, name) for name in names}

    async def create_pin(self, request: Request) -> Response:
        body = await read_json(request)
        account = await self.gate(request, Op.PUBLISH)
        board_id = as_str(body.get("board_id"))
        source = body.get("media_source") or {}
        source_type = as_str(source.get("source_type")) if isinstance(source, dict) else ""
        if not board_id:
            raise Rejection(Reason.INVALID, "Invalid request: board_id is required.")
        if source_type not in SOURCES or not source.get(SOURCES[source_type]):
            raise Rejection(Reason.INVALID, f"Invalid request: media_source needs source_type in {sorted(SOURCES)}.")
        if source_type == "video_id":
            self.check_video(account, source)
        title, description = as_str(body.get("title")), as_str(body.get("description"))
        if len(title) > 100 or len(description) > 800:
            raise Rejection(Reason.CONTENT_REJECTED, "Invalid request: title <= 100 and description <= 800 characters.")
        pin_id = str(1_100_000_000_000_000_000 + self.emu.next_id())
        post = self.emu.record_post(
            account,
            pin_id,
            "\n".join(t for t in (title, description) if t),
            media_type="video" if source_type == "video_id" else "image",
            permalink=f"https://www.pinterest.com/pin/{pin_id}/",
            extra={
                "board_id": board_id,
                "title": title,
                "description": description,
                "link": body.get("link"),
                "alt_text": body.get("alt_text"),
                "multiple": source_type == "multiple_image_urls",
            },
        )
        return json_response(self.pin_json(post, account), 201)

    def check_video(self, account: Account, source: Json) -> None:
        media = self.media.get(as_str(source.get("media_id")))
        if media is None or media.account is not account:
            raise Rejection(Reason.NOT_FOUND, "Media not found.")
        if media.status(self.emu.now()) != "succeeded":
            raise Rejection(Reason.INVALID, f"Invalid request: media {media.id} is {media.status(self.emu.now())}.")
        if not (source.get("cover_image_url") or source.get("cover_image_key_frame_time") is not None):
            raise Rejection(Reason.INVALID, "Invalid request: a video pin needs cover_image_url or a key frame time.")

    # video uploads

    async def register_media(self, request: Request) -> Response:
        body = await read_json(request)
        account = await self.gate(request, Op.PREPARE)
        if body.get("media_type") != "video":
            raise Rejection(Reason.INVALID, "Invalid request: media_type must be video.")
        media_id = str(5_400_000_000_000_000_000 + self.emu.next_id())
        signature = secrets.token_hex(32)
        self.media[media_id] = Media(media_id, account, signature)
        stamp = datetime.fromtimestamp(self.emu.now(), UTC).strftime("%Y%m%dT%H%M%SZ")
        return json_response(
            {
                "media_id": media_id,
                "media_type": "video",
                "upload_url": f"{self.base_url(request)}/media-upload",
                "upload_parameters": {
                    "x-amz-date": stamp,
                    "x-amz-signature": signature,
                    "x-amz-security-token": f"emulator-token-{media_id}",
                    "x-amz-algorithm": "AWS4-HMAC-SHA256",
                    "key": f"uploads/{media_id}",
                    "policy": "emulated",
                    "x-amz-credential": f"EMULATOR/{stamp[:8]}/us-east-1/s3/aws4_request",
                    "Content-Type": "multipart/form-data",
                },
            },
            201,
        )

    async def upload_media(self, request: Request) -> Response:
        """The storage bucket: the form's key names the media and its signature authorises the upload."""
        fields = form_fields(request.headers.get("content-type", ""), await request.body())
        media = self.media.get(fields.get("key", b"").decode().removeprefix("uploads/"))
        if media is None or fields.get("x-amz-signature", b"").decode() != media.signature or not fields.get("file"):
            raise Rejection(Reason.INVALID, "The upload form needs the registered key, its signature and a file.")
        await self.gate(request, Op.PREPARE, account=media.account)
        if media.uploaded_at is None:
            processing = self.emu.processing_for(self.name)
            media.uploaded_at, media.ready_at = self.emu.now(), self.emu.now() + processing.delay_s
            media.outcome = processing.outcome
        return Response(status_code=204)

    async def get_media(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        media = self.media.get(request.path_params["media_id"])
        if media is None or media.account is not account:
            raise Rejection(Reason.NOT_FOUND, "Media not found.")
        return json_response({"media_id": media.id, "media_type": "video", "status": media.status(self.emu.now())})

    def pin_json(self, post: Post, account: Account) -> Json:
        media_type = "multiple_images" if post.extra.get("multiple") else post.media_type
        return {
            "id": post.remote_id,
            "created_at": datetime.fromtimestamp(post.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "link": post.extra.get("link"),
            "title": post.extra.get("title"),
            "description": post.extra.get("description"),
            "alt_text": post.extra.get("alt_text"),
            "board_id": post.extra.get("board_id"),
            "board_owner": {"username": account.username},
            "media": {"media_type": media_type},
        }

    def owned(self, account: Account, pin_id: str) -> Post:
        post = self.emu.post(self.name, pin_id)
        if post is None or post.account_id != account.account_id:
            raise Rejection(Reason.NOT_FOUND, "Pin not found.")
        return post

    async def get_pin(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        return json_response(self.pin_json(self.owned(account, request.path_params["pin_id"]), account))

    async def analytics(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        post = self.owned(account, request.path_params["pin_id"])
        names = [m for m in request.query_params.get("metric_types", ",".join(METRICS)).split(",") if m]
        metrics = {m: self.emu.metric(self.name, post.remote_id, m) for m in names}
        day = datetime.fromtimestamp(self.emu.now(), UTC).strftime("%Y-%m-%d")
        return json_response(
            {
                "all": {
                    "daily_metrics": [{"date": day, "data_status": "READY", "metrics": metrics}],
                    "summary_metrics": metrics,
                    "lifetime_metrics": metrics,
                }
            }
        )

    async def board_pins(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        board_id = request.path_params["board_id"]
        size = min(int(request.query_params.get("page_size") or 25), 250)
        start = int(request.query_params.get("bookmark") or 0)
        posts = [p for p in self.emu.posts_of(self.name, account.account_id) if p.extra.get("board_id") == board_id]
        items = [self.pin_json(p, account) for p in posts[start : start + size]]
        bookmark = str(start + size) if start + size < len(posts) else None
        return json_response({"items": items, "bookmark": bookmark})

    def render(self, rejection: Rejection) -> Response:  # noqa: PLR0911 - one return per error shape
        r, msg = rejection.reason, rejection.message
        match r:
            case Reason.TOKEN_INVALID | Reason.TOKEN_EXPIRED | Reason.TOKEN_REVOKED:
                return pin_error(401, 2, "Authentication failed.")
            case Reason.REFRESH_INVALID:
                return pin_error(400, 1, "Invalid refresh token.")
            case Reason.RATE_LIMITED | Reason.QUOTA_REACHED:
                return pin_error(429, 8, msg or "You have exceeded your rate limit. Try again later.")
            case Reason.SERVER_ERROR:
                return pin_error(
                    rejection.status or 500, 5, msg or "Something went wrong on our end. Sorry about that."
                )
            case Reason.SPAM:
                return pin_error(403, 3, msg or "Your account is restricted: this looks like spam.")
            case Reason.NOT_FOUND:
                return pin_error(404, 50, msg or "Not found.")
            case _:
                return pin_error(400, 1, msg or "Invalid request.")
