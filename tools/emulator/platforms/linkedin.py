"""LinkedIn Posts, Images and Videos APIs (base replaces https://api.linkedin.com; `/oauth/v2/accessToken`
replaces https://www.linkedin.com/oauth/v2/accessToken)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tools.emulator.errors import Reason, Rejection
from tools.emulator.faults import Op
from tools.emulator.platforms.base import Json, Platform, as_str, json_response, read_json, read_params
from tools.emulator.state import Account, Emulator, Outcome, Post

VERSION = re.compile(r"\d{6}(\.\d{2})?")
POST_URN = re.compile(r"urn:li:(share|ugcPost):\d+")
MAX_COMMENTARY = 3000
ANALYTICS = ("IMPRESSION", "MEMBERS_REACHED", "REACTION", "COMMENT", "RESHARE")
PART_BYTES = 4 * 1024 * 1024  # the Videos API's upload part size


@dataclass(eq=False)
class Upload:
    """An image or video registered with initializeUpload: its parts, then processing."""

    urn: str
    account: Account
    parts: list[tuple[int, int]]  # (firstByte, lastByte) per upload URL; an image has one URL
    etags: dict[int, str] = field(default_factory=dict)
    finalized: bool = False  # an image on its upload, a video on finalizeUpload
    ready_at: float = 0.0
    outcome: Outcome = "ok"

    @property
    def video(self) -> bool:
        return self.urn.startswith("urn:li:video:")

    def status(self, now: float) -> str:
        if not self.finalized:
            return "WAITING_UPLOAD"
        if now < self.ready_at:
            return "PROCESSING"
        return "AVAILABLE" if self.outcome == "ok" else "PROCESSING_FAILED"


def li_error(status: int, code: str, message: str, **extra: object) -> Response:
    return json_response({"status": status, "code": code, "message": message, **extra}, status)


class LinkedIn(Platform):
    name = "linkedin"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.uploads: dict[str, Upload] = {}
        emulator.on_reset(self.uploads.clear)

    def routes(self) -> list[Route]:
        return [
            self.route("/rest/images", self.image_action, ["POST"]),
            self.route("/rest/images/{urn}", self.get_upload, ["GET"]),
            self.route("/rest/videos", self.video_action, ["POST"]),
            self.route("/rest/videos/{urn}", self.get_upload, ["GET"]),
            self.route("/dms-uploads/{upload_id}/{part:int}", self.upload_part, ["PUT"]),
            self.route("/oauth/v2/accessToken", self.token, ["POST"]),
            self.route("/v2/userinfo", self.userinfo, ["GET"]),
            self.route("/rest/posts", self.create_post, ["POST"]),
            self.route("/rest/posts", self.find_posts, ["GET"]),
            self.route("/rest/posts/{urn}", self.get_post, ["GET"]),
            self.route("/rest/socialActions/{urn}", self.social_actions, ["GET"]),
            self.route("/rest/memberCreatorPostAnalytics", self.post_analytics, ["GET"]),
            self.route("/rest/memberFollowersCount", self.member_followers, ["GET"]),
            self.route("/rest/networkSizes/{urn}", self.network_size, ["GET"]),
        ]

    def person_urn(self, account: Account) -> str:
        return f"urn:li:person:{account.account_id}"

    def check_version(self, request: Request) -> None:
        version = request.headers.get("linkedin-version", "")
        if not version:
            raise Rejection(Reason.VERSION_MISSING)
        if not VERSION.fullmatch(version):
            raise Rejection(Reason.INVALID, f"Invalid LinkedIn-Version header {version!r}: expected YYYYMM.")
        active_from = self.emu.linkedin_active_from
        if version in self.emu.linkedin_retired or (active_from is not None and version[:6] < active_from):
            raise Rejection(Reason.VERSION_RETIRED, f"Requested version {version} is not active")

    def owned(self, account: Account, raw_urn: str) -> Post:
        post = self.emu.post(self.name, unquote(raw_urn))
        if post is None or post.account_id != account.account_id:
            raise Rejection(Reason.NOT_FOUND, f"Not enough permissions to access: {unquote(raw_urn)}")
        return post

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
                "expires_in": round((account.access_expires_at or now) - now),
                "refresh_token": account.refresh_token,
                "refresh_token_expires_in": round((account.refresh_expires_at or now) - now),
                "scope": ",".join(account.scopes),
            }
        )

    async def userinfo(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        name = account.username.replace("_", " ").title()
        given, _, family = name.partition(" ")
        return json_response(
            {"sub": account.account_id, "name": name, "given_name": given, "family_name": family, "locale": "en_US"}
        )

    async def create_post(self, request: Request) -> Response:
        body = await read_json(request)
        account = await self.gate(request, Op.PUBLISH)
        self.check_version(request)
        author = as_str(body.get("author"))
        if author != self.person_urn(account) and not author.startswith("urn:li:organization:"):
            raise Rejection(Reason.INVALID, f"author: {author!r} is not the authenticated member or an organization")
        commentary = as_str(body.get("commentary"))
        if len(commentary) > MAX_COMMENTARY:
            raise Rejection(Reason.CONTENT_REJECTED, f"commentary is longer than {MAX_COMMENTARY} characters")
        if body.get("lifecycleState") != "PUBLISHED":
            raise Rejection(Reason.INVALID, "lifecycleState must be PUBLISHED")
        media_type = self.content_type(account, body.get("content"))
        existing = self.emu.same_text(account, commentary)
        if existing is not None:
            raise Rejection(
                Reason.DUPLICATE, f"Content is a duplicate of {existing.remote_id}", detail={"urn": existing.remote_id}
            )
        urn = f"urn:li:share:{7_260_000_000_000_000_000 + self.emu.next_id()}"
        self.emu.record_post(
            account,
            urn,
            commentary,
            media_type=media_type,
            permalink=f"https://www.linkedin.com/feed/update/{urn}/",
            extra={"author": author, "visibility": body.get("visibility"), "content": body.get("content")},
        )
        return Response(status_code=201, headers={"x-restli-id": urn, "x-linkedin-id": urn})

    def content_type(self, account: Account, content: object) -> str:
        """TEXT, ARTICLE, IMAGE or VIDEO; a media urn must be this member's and AVAILABLE."""
        if not isinstance(content, dict) or not content:
            return "TEXT"
        media = content.get("media")
        if not isinstance(media, dict):
            return "ARTICLE"
        urn = as_str(media.get("id"))
        upload = self.uploads.get(urn)
        if upload is None or upload.account is not account:
            raise Rejection(Reason.INVALID, f"content.media.id: {urn!r} is not an image or video of the author")
        status = upload.status(self.emu.now())
        if status != "AVAILABLE":
            raise Rejection(Reason.CONTENT_REJECTED, f"content.media.id: {urn} is {status}, not AVAILABLE")
        return "VIDEO" if upload.video else "IMAGE"

    def post_json(self, post: Post) -> Json:
        return {
            "id": post.remote_id,
            "author": post.extra.get("author"),
            "commentary": post.text,
            "visibility": post.extra.get("visibility"),
            "lifecycleState": "PUBLISHED",
            "createdAt": int(post.created_at * 1000),
            "publishedAt": int(post.created_at * 1000),
        } | ({"content": post.extra["content"]} if post.extra.get("content") else {})

    # media uploads

    async def image_action(self, request: Request) -> Response:
        body = await read_json(request)
        account = await self.gate(request, Op.PREPARE)
        self.check_version(request)
        if request.query_params.get("action") != "initializeUpload":
            raise Rejection(Reason.INVALID, "Only action=initializeUpload is emulated for images")
        upload = self.register(account, body, "image", [(0, 0)])
        return json_response(
            {
                "value": {
                    "uploadUrlExpiresAt": int((self.emu.now() + 86400) * 1000),
                    "uploadUrl": f"{self.base_url(request)}/dms-uploads/{upload.urn.rsplit(':', 1)[1]}/0",
                    "image": upload.urn,
                }
            }
        )

    async def video_action(self, request: Request) -> Response:
        body = await read_json(request)
        account = await self.gate(request, Op.PREPARE)
        self.check_version(request)
        match request.query_params.get("action"):
            case "initializeUpload":
                size = int((body.get("initializeUploadRequest") or {}).get("fileSizeBytes") or 0)
                if size <= 0:
                    raise Rejection(Reason.INVALID, "initializeUploadRequest.fileSizeBytes is required")
                parts = [(first, min(first + PART_BYTES, size) - 1) for first in range(0, size, PART_BYTES)]
                upload = self.register(account, body, "video", parts)
                base = f"{self.base_url(request)}/dms-uploads/{upload.urn.rsplit(':', 1)[1]}"
                instructions = [
                    {"uploadUrl": f"{base}/{n}", "firstByte": first, "lastByte": last}
                    for n, (first, last) in enumerate(parts)
                ]
                return json_response(
                    {
                        "value": {
                            "uploadUrlsExpireAt": int((self.emu.now() + 86400) * 1000),
                            "video": upload.urn,
                            "uploadInstructions": instructions,
                            "uploadToken": "",
                        }
                    }
                )
            case "finalizeUpload":
                self.finalize(account, body.get("finalizeUploadRequest") or {})
                return Response(status_code=200)
        raise Rejection(Reason.INVALID, "action must be initializeUpload or finalizeUpload")

    def register(self, account: Account, body: Json, kind: str, parts: list[tuple[int, int]]) -> Upload:
        owner = as_str((body.get("initializeUploadRequest") or {}).get("owner"))
        if owner != self.person_urn(account) and not owner.startswith("urn:li:organization:"):
            raise Rejection(Reason.INVALID, f"owner: {owner!r} is not the authenticated member or an organization")
        prefix = "C5F10AQ" if kind == "video" else "C4E10AQ"  # the shape of LinkedIn's digital media asset ids
        upload = Upload(f"urn:li:{kind}:{prefix}{self.emu.next_id():011d}", account, parts)
        self.uploads[upload.urn] = upload
        return upload

    async def upload_part(self, request: Request) -> Response:
        asset = request.path_params["upload_id"]
        upload = self.uploads.get(f"urn:li:image:{asset}") or self.uploads.get(f"urn:li:video:{asset}")
        part = request.path_params["part"]
        if upload is None or part >= len(upload.parts):
            raise Rejection(Reason.NOT_FOUND, "Upload URL not found")
        await self.gate(request, Op.PREPARE, account=upload.account)
        chunk = await request.body()
        if not upload.video:  # an image is available as soon as it is uploaded
            upload.finalized = True
            return Response(status_code=201)
        first, last = upload.parts[part]
        if len(chunk) != last - first + 1:
            raise Rejection(Reason.INVALID, f"Part {part} must be bytes {first}-{last}")
        upload.etags[part] = f"/ambry-video/signedId/{hashlib.sha256(chunk).hexdigest()[:32]}"
        return Response(status_code=200, headers={"ETag": upload.etags[part]})

    def finalize(self, account: Account, request: Json) -> None:
        upload = self.uploads.get(as_str(request.get("video")))
        if upload is None or upload.account is not account or not upload.video:
            raise Rejection(Reason.INVALID, f"finalizeUploadRequest.video: unknown video {request.get('video')!r}")
        expected = [upload.etags.get(n) for n in range(len(upload.parts))]
        if request.get("uploadedPartIds") != expected:
            raise Rejection(Reason.INVALID, "uploadedPartIds must list the ETag of every part, in order")
        if not upload.finalized:
            processing = self.emu.processing_for(self.name)
            upload.finalized, upload.ready_at = True, self.emu.now() + processing.delay_s
            upload.outcome = processing.outcome

    async def get_upload(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        self.check_version(request)
        urn = unquote(request.path_params["urn"])
        upload = self.uploads.get(urn)
        if upload is None or upload.account is not account:
            raise Rejection(Reason.NOT_FOUND, f"Not enough permissions to access: {urn}")
        return json_response({"id": urn, "owner": self.person_urn(account), "status": upload.status(self.emu.now())})

    async def get_post(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        self.check_version(request)
        return json_response(self.post_json(self.owned(account, request.path_params["urn"])))

    async def find_posts(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        self.check_version(request)
        author = request.query_params.get("author", "")
        if request.query_params.get("q") != "author" or not author:
            raise Rejection(Reason.INVALID, "Only q=author&author=<urn> is emulated")
        count = min(int(request.query_params.get("count") or 10), 100)
        start = int(request.query_params.get("start") or 0)
        posts = [p for p in self.emu.posts_of(self.name, account.account_id) if p.extra.get("author") == author]
        elements = [self.post_json(p) for p in posts[start : start + count]]
        return json_response({"elements": elements, "paging": {"start": start, "count": count, "total": len(posts)}})

    async def social_actions(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        self.check_version(request)
        post = self.owned(account, request.path_params["urn"])
        likes = self.emu.metric(self.name, post.remote_id, "REACTION")
        comments = self.emu.metric(self.name, post.remote_id, "COMMENT")
        return json_response(
            {
                "target": post.remote_id,
                "likesSummary": {"totalLikes": likes, "likedByCurrentUser": False},
                "commentsSummary": {"aggregatedTotalComments": comments, "totalFirstLevelComments": comments},
            }
        )

    async def post_analytics(self, request: Request) -> Response:
        """`?q=entity&entity=(share:urn%3Ali%3Ashare%3A123)&queryType=IMPRESSION&aggregation=TOTAL`."""
        account = await self.gate(request, Op.READ)
        self.check_version(request)
        match = POST_URN.search(unquote(request.query_params.get("entity", "")))
        query_type = request.query_params.get("queryType", "")
        if match is None or query_type not in ANALYTICS:
            raise Rejection(Reason.INVALID, f"entity must name a share or ugcPost urn; queryType one of {ANALYTICS}")
        post = self.owned(account, match.group(0))
        count = self.emu.metric(self.name, post.remote_id, query_type)
        return json_response(
            {"elements": [{"count": count, "metricType": query_type}], "paging": {"start": 0, "count": 1}}
        )

    async def member_followers(self, request: Request) -> Response:
        """`?q=me`: the token's member's follower count."""
        account = await self.gate(request, Op.READ)
        self.check_version(request)
        if request.query_params.get("q") != "me":
            raise Rejection(Reason.INVALID, "Only q=me is emulated.")
        count = self.emu.account_metric(account, "memberFollowersCount")
        return json_response({"elements": [{"memberFollowersCount": count}], "paging": {"start": 0, "count": 1}})

    async def network_size(self, request: Request) -> Response:
        """`/rest/networkSizes/urn:li:organization:{id}?edgeType=COMPANY_FOLLOWED_BY_MEMBER`: an
        organization's followers. The account is the organization's administrator; any organization urn works."""
        account = await self.gate(request, Op.READ)
        self.check_version(request)
        urn = unquote(request.path_params["urn"])
        if not urn.startswith("urn:li:organization:") or request.query_params.get("edgeType") != (
            "COMPANY_FOLLOWED_BY_MEMBER"
        ):
            raise Rejection(Reason.INVALID, "an organization urn and edgeType=COMPANY_FOLLOWED_BY_MEMBER are needed")
        return json_response({"firstDegreeSize": self.emu.account_metric(account, "firstDegreeSize")})

    def render(self, rejection: Rejection) -> Response:  # noqa: PLR0911, PLR0912 - one return per error shape
        r, msg = rejection.reason, rejection.message
        match r:
            case Reason.TOKEN_EXPIRED:
                return li_error(
                    401, "EXPIRED_ACCESS_TOKEN", "The token used in the request has expired", serviceErrorCode=65602
                )
            case Reason.TOKEN_REVOKED:
                return li_error(
                    401,
                    "REVOKED_ACCESS_TOKEN",
                    "The token used in the request has been revoked by the user",
                    serviceErrorCode=65601,
                )
            case Reason.TOKEN_INVALID:
                return li_error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", serviceErrorCode=65600)
            case Reason.REFRESH_INVALID:
                body = {
                    "error": "invalid_request",
                    "error_description": "The provided authorization grant or refresh token is invalid, expired "
                    "or revoked",
                }
                return json_response(body, 400)
            case Reason.RATE_LIMITED | Reason.QUOTA_REACHED:
                return li_error(
                    429,
                    "TOO_MANY_REQUESTS",
                    msg or "Resource level throttle MEMBER DAY limit for calls to this resource is reached.",
                )
            case Reason.SERVER_ERROR:
                return li_error(rejection.status or 500, "INTERNAL_SERVER_ERROR", msg or "Internal Server Error")
            case Reason.DUPLICATE:
                return li_error(
                    422,
                    "DUPLICATE_POST",
                    msg,
                    errorDetailType="com.linkedin.common.error.BadRequest",
                    errorDetails={"inputErrors": [{"code": "DUPLICATE_POST", "description": msg}]},
                )
            case Reason.CONTENT_REJECTED:
                return li_error(422, "UNPROCESSABLE_ENTITY", msg or "The post content was rejected.")
            case Reason.SPAM:
                return li_error(
                    403, "ACCESS_DENIED", msg or "The member is restricted from posting.", serviceErrorCode=100
                )
            case Reason.VERSION_MISSING:
                return li_error(
                    400,
                    "VERSION_MISSING",
                    "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
                )
            case Reason.VERSION_RETIRED:
                return li_error(426, "NONEXISTENT_VERSION", msg)
            case Reason.NOT_FOUND:
                return li_error(403, "ACCESS_DENIED", msg, serviceErrorCode=100)
            case _:
                return li_error(400, "BAD_REQUEST", msg or "Bad request")
