"""YouTube Data API v3 (base replaces https://www.googleapis.com; `/token` replaces https://oauth2.googleapis.com/token)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tools.emulator.errors import Reason, Rejection
from tools.emulator.faults import Op
from tools.emulator.platforms.base import Json, Platform, as_str, json_response, read_json, read_params
from tools.emulator.state import Account, Emulator, Post, rfc3339

CHUNK = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
PROBE = re.compile(r"bytes \*/(\d+|\*)")


@dataclass(eq=False)
class Session:
    id: str
    account: Account
    snippet: Json
    status: Json
    total: int | None
    received: int = 0
    video: Post | None = None


def video_id(n: int) -> str:
    """An 11-character id like YouTube's, derived from a counter so it is unique and stable."""
    return base64.urlsafe_b64encode(hashlib.blake2b(n.to_bytes(8, "big"), digest_size=8).digest()).decode()[:11]


def yt_error(status: int, message: str, reason: str, domain: str = "global", **extra: str) -> Response:
    error: Json = {
        "code": status,
        "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason}],
    }
    error |= extra
    return json_response({"error": error}, status)


class YouTube(Platform):
    name = "youtube"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.sessions: dict[str, Session] = {}
        emulator.on_reset(self.sessions.clear)

    def routes(self) -> list[Route]:
        return [
            self.route("/token", self.token, ["POST"]),
            self.route("/upload/youtube/v3/videos", self.start_upload, ["POST"]),
            self.route("/upload/youtube/v3/videos", self.upload, ["PUT"]),
            self.route("/youtube/v3/videos", self.list_videos, ["GET"]),
            self.route("/youtube/v3/channels", self.channels, ["GET"]),
            self.route("/youtube/v3/playlistItems", self.playlist_items, ["GET"]),
        ]

    async def token(self, request: Request) -> Response:
        params = await read_params(request)
        try:
            await self.gate_open(request)
        except Rejection as rejection:  # Google's OAuth server, not the Data API: its own error shape
            if rejection.reason is not Reason.RATE_LIMITED:
                raise
            return json_response({"error": "rate_limit_exceeded", "error_description": "Too many requests"}, 429)
        if params.get("grant_type") != "refresh_token":
            raise Rejection(Reason.REFRESH_INVALID)
        account = self.emu.use_refresh_token(self.name, as_str(params.get("refresh_token")))
        now = self.emu.now()
        body: Json = {
            "access_token": account.access_token,
            "expires_in": round((account.access_expires_at or now + 3599) - now),
            "scope": " ".join(account.scopes),
            "token_type": "Bearer",
        }
        if account.rotates_refresh_token:
            body["refresh_token"] = account.refresh_token
        return json_response(body)

    async def start_upload(self, request: Request) -> Response:
        body = await read_json(request)
        account = await self.gate(request, Op.PREPARE)
        if request.query_params.get("uploadType") != "resumable":
            raise Rejection(Reason.INVALID, "Only uploadType=resumable is emulated.", detail={"reason": "badRequest"})
        snippet, status = dict(body.get("snippet") or {}), dict(body.get("status") or {})
        title = as_str(snippet.get("title"))
        if not title or len(title) > 100:
            raise Rejection(
                Reason.INVALID,
                "The request metadata specifies an invalid video title.",
                detail={"reason": "invalidTitle"},
            )
        if len(as_str(snippet.get("description"))) > 5000:
            raise Rejection(
                Reason.INVALID,
                "The request metadata specifies an invalid video description.",
                detail={"reason": "invalidDescription"},
            )
        total = request.headers.get("x-upload-content-length")
        session = Session(secrets.token_urlsafe(24), account, snippet, status, int(total) if total else None)
        self.sessions[session.id] = session
        location = f"{self.base_url(request)}/upload/youtube/v3/videos?uploadType=resumable&upload_id={session.id}"
        return Response(status_code=200, headers={"Location": location})

    async def upload(self, request: Request) -> Response:
        session = self.sessions.get(request.query_params.get("upload_id", ""))
        if session is None:
            raise Rejection(Reason.NOT_FOUND, "The upload session does not exist or has expired.")
        chunk = await request.body()
        content_range = request.headers.get("content-range", "")
        if session.video is not None:
            await self.gate(request, Op.READ, account=session.account)
            return json_response(self.video_json(session.video, {"snippet", "status"}))
        if PROBE.fullmatch(content_range):
            await self.gate(request, Op.READ, account=session.account)
            return self.incomplete(session)
        match = CHUNK.fullmatch(content_range)
        complete = True  # a PUT without Content-Range is a whole (possibly tiny placeholder) body
        if match is not None:
            session.received = max(session.received, int(match.group(2)) + 1)
            complete = match.group(3) != "*" and session.received >= int(match.group(3))
        else:
            session.received = max(session.received, len(chunk))
        if not complete:
            await self.gate(request, Op.PREPARE, account=session.account)
            return self.incomplete(session)
        account = await self.gate(request, Op.PUBLISH, account=session.account)
        session.video = self.create_video(account, session)
        return json_response(self.video_json(session.video, {"snippet", "status"}))

    @staticmethod
    def incomplete(session: Session) -> Response:
        headers = {"Range": f"bytes=0-{session.received - 1}"} if session.received else {}
        return Response(status_code=308, headers=headers)

    def create_video(self, account: Account, session: Session) -> Post:
        vid = video_id(self.emu.next_id())
        privacy = as_str(session.status.get("privacyStatus") or "public")
        locked = not account.audited and privacy != "private"
        if locked:  # videos uploaded by unverified API projects are locked private
            privacy = "private"
        title, description = as_str(session.snippet.get("title")), as_str(session.snippet.get("description"))
        short = "#shorts" in f"{title} {description}".lower()
        return self.emu.record_post(
            account,
            vid,
            f"{title}\n{description}" if description else title,
            media_type="SHORT" if short else "VIDEO",
            permalink=f"https://www.youtube.com/{'shorts/' if short else 'watch?v='}{vid}",
            processing_s=self.processing_s(),
            privacy=privacy,
            extra={"title": title, "description": description, "locked_private": locked, "session": session.id},
        )

    def video_json(self, post: Post, parts: set[str]) -> Json:
        body: Json = {"kind": "youtube#video", "etag": f"e{post.remote_id}", "id": post.remote_id}
        if "snippet" in parts:
            body["snippet"] = {
                "publishedAt": rfc3339(post.created_at),
                "channelId": post.account_id,
                "title": post.extra.get("title", ""),
                "description": post.extra.get("description", ""),
                "categoryId": "22",
            }
        if "status" in parts:
            processed = post.status(self.emu.now()) != "processing"
            body["status"] = {
                "uploadStatus": "processed" if processed else "uploaded",
                "privacyStatus": post.privacy,
                "license": "youtube",
                "embeddable": True,
                "publicStatsViewable": True,
                "selfDeclaredMadeForKids": False,
            }
        if "statistics" in parts:
            stats = {
                k: str(self.emu.metric(self.name, post.remote_id, k))
                for k in ("viewCount", "likeCount", "commentCount")
            }
            body["statistics"] = stats | {"favoriteCount": "0"}
        return body

    async def list_videos(self, request: Request) -> Response:
        await self.gate(request, Op.READ)
        parts = set(request.query_params.get("part", "").split(","))
        ids = [i for i in request.query_params.get("id", "").split(",") if i]
        posts = [p for p in (self.emu.post(self.name, i) for i in ids) if p is not None]
        items = [self.video_json(p, parts) for p in posts]
        page = {"totalResults": len(items), "resultsPerPage": len(items)}
        return json_response({"kind": "youtube#videoListResponse", "items": items, "pageInfo": page})

    async def channels(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        if request.query_params.get("mine") != "true":
            raise Rejection(Reason.INVALID, "Only mine=true is emulated.", detail={"reason": "badRequest"})
        parts = set(request.query_params.get("part", "id").split(","))
        item: Json = {"kind": "youtube#channel", "id": account.account_id}
        if "snippet" in parts:
            item["snippet"] = {"title": account.username, "customUrl": f"@{account.username}"}
        if "contentDetails" in parts:
            item["contentDetails"] = {"relatedPlaylists": {"uploads": "UU" + account.account_id[2:]}}
        if "statistics" in parts:
            item["statistics"] = self.channel_statistics(account)
        return json_response({"kind": "youtube#channelListResponse", "items": [item], "pageInfo": {"totalResults": 1}})

    def channel_statistics(self, account: Account) -> Json:
        """Counts as strings, as YouTube sends them."""
        names = ("viewCount", "subscriberCount", "videoCount")
        return {name: str(self.emu.account_metric(account, name)) for name in names} | {"hiddenSubscriberCount": False}

    async def playlist_items(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        if request.query_params.get("playlistId") != "UU" + account.account_id[2:]:
            raise Rejection(Reason.NOT_FOUND, "The playlist identified with the request's playlistId cannot be found.")
        size = min(int(request.query_params.get("maxResults") or 5), 50)
        start = int(request.query_params.get("pageToken") or 0)
        posts = self.emu.posts_of(self.name, account.account_id)
        items = [
            {
                "kind": "youtube#playlistItem",
                "id": f"pli{p.remote_id}",
                "snippet": {
                    "publishedAt": rfc3339(p.created_at),
                    "title": p.extra.get("title", ""),
                    "description": p.extra.get("description", ""),
                    "resourceId": {"kind": "youtube#video", "videoId": p.remote_id},
                },
                "contentDetails": {"videoId": p.remote_id, "videoPublishedAt": rfc3339(p.created_at)},
            }
            for p in posts[start : start + size]
        ]
        body: Json = {
            "kind": "youtube#playlistItemListResponse",
            "items": items,
            "pageInfo": {"totalResults": len(posts)},
        }
        if start + size < len(posts):
            body["nextPageToken"] = str(start + size)
        return json_response(body)

    def render(self, rejection: Rejection) -> Response:  # noqa: PLR0911 - one return per error shape
        r, msg = rejection.reason, rejection.message
        match r:
            case Reason.TOKEN_INVALID | Reason.TOKEN_EXPIRED | Reason.TOKEN_REVOKED:
                return yt_error(
                    401,
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                    "other valid authentication credential.",
                    "authError",
                    grpc_status="UNAUTHENTICATED",
                )
            case Reason.REFRESH_INVALID:
                body = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                return json_response(body, 400)
            case Reason.RATE_LIMITED:
                return yt_error(
                    403,
                    msg or "The request cannot be completed because you have exceeded your quota.",
                    "quotaExceeded",
                    "youtube.quota",
                )
            case Reason.QUOTA_REACHED:
                return yt_error(
                    400,
                    msg or "The user has exceeded the number of videos they may upload.",
                    "uploadLimitExceeded",
                    "youtube.video",
                )
            case Reason.SERVER_ERROR:
                return yt_error(rejection.status or 503, msg or "Backend Error", "backendError")
            case Reason.CONTENT_REJECTED:
                return yt_error(400, msg or "The request metadata is invalid.", "invalidVideoMetadata", "youtube.video")
            case Reason.SPAM:
                return yt_error(403, msg or "The channel is restricted from uploading.", "forbidden", "youtube.video")
            case Reason.NOT_FOUND:
                return yt_error(404, msg or "Not Found", "notFound")
            case _:
                reason = as_str(rejection.detail.get("reason") or "badRequest")
                return yt_error(400, msg or "Bad Request", reason, "youtube.video")
