"""X API v2 (base replaces https://api.x.com)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tools.emulator.errors import Reason, Rejection
from tools.emulator.faults import Op
from tools.emulator.platforms.base import Json, Platform, as_str, json_response, read_json, read_params
from tools.emulator.state import Account, Emulator, Post, rfc3339

MAX_TEXT = 280
DUPLICATE = "You are not allowed to create a Tweet with duplicate content."
AUTOMATED = (
    "This request looks like it might be automated. To protect our users from spam and other malicious activity, "
    "we can't complete this action right now. Please try again later."
)
INVALID_TYPE = "https://api.twitter.com/2/problems/invalid-request"
METRICS = ("retweet_count", "reply_count", "like_count", "quote_count", "bookmark_count", "impression_count")


@dataclass(eq=False)
class Media:
    id: str
    account: Account
    media_type: str
    video: bool
    finalized: bool = False
    ready_at: float = 0.0


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    body = {"title": title, "detail": detail, "type": "about:blank", "status": status}
    return json_response(body, status, headers)


class X(Platform):
    name = "x"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.media: dict[str, Media] = {}
        emulator.on_reset(self.media.clear)

    def routes(self) -> list[Route]:
        return [
            self.route("/2/oauth2/token", self.token, ["POST"]),
            self.route("/2/tweets", self.create_tweet, ["POST"]),
            self.route("/2/tweets", self.lookup_tweets, ["GET"]),
            self.route("/2/tweets/{tweet_id}", self.get_tweet, ["GET"]),
            self.route("/2/users/me", self.me, ["GET"]),
            self.route("/2/users/{user_id}/tweets", self.timeline, ["GET"]),
            self.route("/2/media/upload/initialize", self.media_initialize, ["POST"]),
            self.route("/2/media/upload/{media_id}/append", self.media_append, ["POST"]),
            self.route("/2/media/upload/{media_id}/finalize", self.media_finalize, ["POST"]),
            self.route("/2/media/upload", self.media_status, ["GET"]),
        ]

    def rate_headers(self, account: Account) -> dict[str, str]:
        limits = self.emu.limits_of(account)
        now = self.emu.now()
        headers: dict[str, str] = {}
        if limits.request_limit is not None:
            used, reset = account.usage.request_window(limits, now)
            headers["x-rate-limit-limit"] = str(limits.request_limit)
            headers["x-rate-limit-remaining"] = str(max(0, limits.request_limit - used))
            headers["x-rate-limit-reset"] = str(int(reset))
        return headers

    def user_limit_headers(self, account: Account) -> dict[str, str]:
        limits = self.emu.limits_of(account)
        now = self.emu.now()
        remaining = account.usage.publish_remaining(limits, now)
        if remaining is None or limits.publish_limit is None:
            return {}
        reset = (
            account.usage.publish_reset_at(limits, now) if account.usage.publishes else now + limits.publish_window_s
        )
        return {
            "x-user-limit-24hour-limit": str(limits.publish_limit),
            "x-user-limit-24hour-remaining": str(remaining),
            "x-user-limit-24hour-reset": str(int(reset)),
        }

    # handlers

    async def token(self, request: Request) -> Response:
        params = await read_params(request)
        await self.gate_open(request)
        if params.get("grant_type") != "refresh_token":
            raise Rejection(Reason.REFRESH_INVALID, "unsupported_grant_type")
        account = self.emu.use_refresh_token(self.name, as_str(params.get("refresh_token")))
        expires_in = round((account.access_expires_at or self.emu.now()) - self.emu.now())
        return json_response(
            {
                "token_type": "bearer",
                "expires_in": expires_in,
                "access_token": account.access_token,
                "scope": " ".join(account.scopes),
                "refresh_token": account.refresh_token,
            }
        )

    async def create_tweet(self, request: Request) -> Response:
        body = await read_json(request)
        account = await self.gate(request, Op.PUBLISH)
        text = as_str(body.get("text"))
        media_ids = [as_str(m) for m in (body.get("media") or {}).get("media_ids", [])]
        if len(text) > MAX_TEXT:
            raise Rejection(Reason.INVALID, f"The text is longer than {MAX_TEXT} characters.")
        if not text and not media_ids:
            raise Rejection(Reason.INVALID, "Either text or media is required.")
        now = self.emu.now()
        media = [self.media.get(m) for m in media_ids]
        if len(media_ids) > 4 or any(
            m is None or m.account is not account or not m.finalized or m.ready_at > now for m in media
        ):
            raise Rejection(Reason.INVALID, "Your media IDs are invalid.")
        if self.emu.same_text(account, text) is not None:
            raise Rejection(Reason.DUPLICATE)
        tweet_id = str(1_900_000_000_000_000_000 + self.emu.next_id())
        kind = "TEXT" if not media else ("VIDEO" if any(m and m.video for m in media) else "PHOTO")
        self.emu.record_post(
            account,
            tweet_id,
            text,
            media_type=kind,
            permalink=f"https://x.com/{account.username}/status/{tweet_id}",
            extra={"media_ids": media_ids, "reply": body.get("reply")},
        )
        headers = self.rate_headers(account) | self.user_limit_headers(account)
        data = {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}
        return json_response({"data": data}, 201, headers)

    def tweet_json(self, post: Post, fields: set[str]) -> Json:
        data: Json = {"id": post.remote_id, "text": post.text, "edit_history_tweet_ids": [post.remote_id]}
        if "public_metrics" in fields:
            data["public_metrics"] = {m: self.emu.metric(self.name, post.remote_id, m) for m in METRICS}
        if "created_at" in fields:
            data["created_at"] = rfc3339(post.created_at).replace("Z", ".000Z")
        if "author_id" in fields:
            data["author_id"] = post.account_id
        return data

    @staticmethod
    def not_found(tweet_id: str) -> Json:
        return {
            "value": tweet_id,
            "detail": f"Could not find tweet with id: [{tweet_id}].",
            "title": "Not Found Error",
            "resource_type": "tweet",
            "parameter": "id",
            "resource_id": tweet_id,
            "type": "https://api.twitter.com/2/problems/resource-not-found",
        }

    async def get_tweet(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        tweet_id = request.path_params["tweet_id"]
        fields = set(request.query_params.get("tweet.fields", "").split(","))
        post = self.emu.post(self.name, tweet_id)
        if post is None:
            return json_response({"errors": [self.not_found(tweet_id)]}, headers=self.rate_headers(account))
        return json_response({"data": self.tweet_json(post, fields)}, headers=self.rate_headers(account))

    async def lookup_tweets(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        if not 1 <= len(ids) <= 100:
            raise Rejection(Reason.INVALID, "The ids query parameter needs 1 to 100 ids.")
        fields = set(request.query_params.get("tweet.fields", "").split(","))
        found = [(i, self.emu.post(self.name, i)) for i in ids]
        body: Json = {"data": [self.tweet_json(p, fields) for _, p in found if p is not None]}
        missing = [self.not_found(i) for i, p in found if p is None]
        if missing:
            body["errors"] = missing
        return json_response(body, headers=self.rate_headers(account))

    async def me(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        data: Json = {
            "id": account.account_id,
            "name": account.username.replace("_", " ").title(),
            "username": account.username,
        }
        if "public_metrics" in request.query_params.get("user.fields", "").split(","):
            data["public_metrics"] = self.user_metrics(account)
        return json_response({"data": data}, headers=self.rate_headers(account))

    def user_metrics(self, account: Account) -> Json:
        names = ("followers_count", "following_count", "tweet_count", "listed_count", "like_count")
        return {name: self.emu.account_metric(account, name) for name in names}

    async def timeline(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        user_id = request.path_params["user_id"]
        params = request.query_params
        max_results = min(max(int(params.get("max_results") or 10), 5), 100)
        start = int(params.get("pagination_token") or 0)
        fields = set(params.get("tweet.fields", "").split(","))
        posts = self.emu.posts_of(self.name, user_id)
        page = posts[start : start + max_results]
        meta: Json = {"result_count": len(page)}
        if page:
            meta |= {"newest_id": page[0].remote_id, "oldest_id": page[-1].remote_id}
        if start + max_results < len(posts):
            meta["next_token"] = str(start + max_results)
        body: Json = {"meta": meta}
        if page:
            body["data"] = [self.tweet_json(p, fields) for p in page]
        return json_response(body, headers=self.rate_headers(account))

    async def media_initialize(self, request: Request) -> Response:
        params = await read_params(request)
        account = await self.gate(request, Op.PREPARE)
        media_type = as_str(params.get("media_type"))
        if not media_type or not params.get("total_bytes"):
            raise Rejection(Reason.INVALID, "media_type and total_bytes are required.")
        category = as_str(params.get("media_category"))
        video = media_type.startswith("video/") or category.endswith("video")
        media = Media(str(1_800_000_000_000_000_000 + self.emu.next_id()), account, media_type, video)
        self.media[media.id] = media
        return json_response({"data": {"id": media.id, "media_key": f"3_{media.id}", "expires_after_secs": 86400}})

    def owned_media(self, account: Account, media_id: str) -> Media:
        media = self.media.get(media_id)
        if media is None or media.account is not account:
            raise Rejection(Reason.INVALID, f"Unknown media id {media_id}.")
        return media

    async def media_append(self, request: Request) -> Response:
        account = await self.gate(request, Op.PREPARE)
        self.owned_media(account, request.path_params["media_id"])
        await request.body()
        return json_response({"data": {"expires_at": int(self.emu.now() + 86400)}})

    async def media_finalize(self, request: Request) -> Response:
        account = await self.gate(request, Op.PREPARE)
        media = self.owned_media(account, request.path_params["media_id"])
        media.finalized = True
        data: Json = {"id": media.id, "media_key": f"3_{media.id}", "expires_after_secs": 86400}
        if media.video and self.processing_s() > 0:
            media.ready_at = self.emu.now() + self.processing_s()
            data["processing_info"] = {"state": "pending", "check_after_secs": max(1, int(self.processing_s()))}
        return json_response({"data": data})

    async def media_status(self, request: Request) -> Response:
        account = await self.gate(request, Op.READ)
        media = self.owned_media(account, request.query_params.get("media_id", ""))
        remaining = media.ready_at - self.emu.now()
        info: Json = (
            {"state": "succeeded", "progress_percent": 100}
            if remaining <= 0
            else {"state": "in_progress", "check_after_secs": max(1, int(remaining)), "progress_percent": 50}
        )
        return json_response({"data": {"id": media.id, "media_key": f"3_{media.id}", "processing_info": info}})

    def render(self, rejection: Rejection) -> Response:  # noqa: PLR0911 - one return per error shape
        r, msg = rejection.reason, rejection.message
        match r:
            case Reason.TOKEN_INVALID | Reason.TOKEN_EXPIRED | Reason.TOKEN_REVOKED:
                return problem(401, "Unauthorized", "Unauthorized")
            case Reason.REFRESH_INVALID:
                error = msg or "invalid_request"
                return json_response(
                    {"error": error, "error_description": "Value passed for the token was invalid."}, 400
                )
            case Reason.RATE_LIMITED | Reason.QUOTA_REACHED:
                reset = str(int(rejection.detail.get("reset") or self.emu.now() + (rejection.retry_after or 900)))
                limit = str(rejection.detail.get("limit") or 0)
                prefix = "x-rate-limit" if r is Reason.RATE_LIMITED else "x-user-limit-24hour"
                headers = {f"{prefix}-limit": limit, f"{prefix}-remaining": "0", f"{prefix}-reset": reset}
                return problem(429, "Too Many Requests", msg or "Too Many Requests", headers)
            case Reason.SERVER_ERROR:
                status = rejection.status or 503
                return problem(status, "Service Unavailable", msg or "Service Unavailable")
            case Reason.DUPLICATE:
                return problem(403, "Forbidden", DUPLICATE)
            case Reason.SPAM:
                return problem(403, "Forbidden", msg or AUTOMATED)
            case _:
                detail = msg or "The content was rejected."
                body = {
                    "errors": [{"message": detail}],
                    "title": "Invalid Request",
                    "detail": "One or more parameters to your request was invalid.",
                    "type": INVALID_TYPE,
                }
                return json_response(body, 400)
