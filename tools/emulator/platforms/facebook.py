"""Facebook Pages via the Graph API (base replaces https://graph.facebook.com/v21.0)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tools.emulator.errors import Reason, Rejection
from tools.emulator.faults import Op
from tools.emulator.platforms.base import Json, Platform, as_str, json_response, read_params
from tools.emulator.platforms.graph import (
    fields_of,
    graph_error,
    graph_time,
    graph_token,
    insights_body,
    not_found,
    token_error,
)
from tools.emulator.state import Account, Emulator, Post

DEFAULT_METRICS = ["post_total_media_view_unique", "post_media_view", "post_clicks", "post_reactions_like_total"]


@dataclass(eq=False)
class Media:
    """An unpublished photo (for attached_media or a photo story) or a reel / video story upload session."""

    id: str
    account: Account
    kind: str  # photo | reel | story
    url: str = ""  # where Facebook fetched the photo or video from
    uploaded: bool = False
    post_id: str | None = None


class Facebook(Platform):
    name = "facebook"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.media: dict[str, Media] = {}
        emulator.on_reset(self.media.clear)

    def routes(self) -> list[Route]:
        return [
            self.route("/oauth/access_token", self.exchange_token, ["GET"]),
            self.route("/video-upload/{video_id}", self.upload_video, ["POST"]),
            self.route("/{node}", self.get_node, ["GET"]),
            self.route("/{node}/{edge}", self.get_edge, ["GET"]),
            self.route("/{node}/{edge}", self.post_edge, ["POST"]),
        ]

    def respond(self, account: Account, body: Json) -> Response:
        """Adds Meta's Business Use Case usage header when a request limit is configured for the page."""
        limits = self.emu.limits_of(account)
        if limits.request_limit is None:
            return json_response(body)
        used, reset = account.usage.request_window(limits, self.emu.now())
        pct = min(100, int(100 * used / max(1, limits.request_limit)))
        usage = {
            account.account_id: [
                {
                    "type": "pages",
                    "call_count": pct,
                    "total_cputime": pct,
                    "total_time": pct,
                    "estimated_time_to_regain_access": 0 if pct < 100 else int((reset - self.emu.now()) / 60) + 1,
                }
            ]
        }
        return json_response(body, headers={"X-Business-Use-Case-Usage": json.dumps(usage)})

    async def exchange_token(self, request: Request) -> Response:
        params = await read_params(request)
        await self.gate_open(request)
        if params.get("grant_type") != "fb_exchange_token":
            raise Rejection(Reason.INVALID, "grant_type must be fb_exchange_token")
        account = self.emu.extend_access_token(self.name, as_str(params.get("fb_exchange_token")))
        body: Json = {"access_token": account.access_token, "token_type": "bearer"}
        if account.access_expires_at is not None:
            body["expires_in"] = round(account.access_expires_at - self.emu.now())
        return json_response(body)

    async def upload_video(self, request: Request) -> Response:
        account = await self.gate(request, Op.PREPARE)
        media = self.media.get(request.path_params["video_id"])
        if media is None or media.account is not account or media.kind == "photo":
            raise not_found(request.path_params["video_id"], "post")
        await request.body()
        media.url = request.headers.get("file_url", "")
        media.uploaded = True
        return json_response({"success": True})

    async def get_node(self, request: Request) -> Response:
        params = await read_params(request)
        account = await self.gate(request, Op.READ, token=graph_token(request, params))
        node = request.path_params["node"]
        fields = fields_of(params)
        if node in ("me", account.account_id):
            return self.respond(account, self.page_json(account, fields))
        post = self.emu.post(self.name, node)
        if post is not None and post.account_id == account.account_id:
            return self.respond(account, self.post_json(post, fields or ["id"]) | self.engagement_json(post, fields))
        media = self.media.get(node)
        if media is not None and media.account is account:
            body: Json = {"id": media.id}
            if media.kind != "photo":
                status = "ready" if media.post_id else ("uploaded" if media.uploaded else "upload_pending")
                body |= {"post_id": media.post_id, "status": {"video_status": status}}
                linked = self.emu.post(self.name, media.post_id) if media.post_id else None
                body["permalink_url"] = linked.permalink if linked else None
            return self.respond(account, body)
        raise not_found(node)

    async def get_edge(self, request: Request) -> Response:
        params = await read_params(request)
        account = await self.gate(request, Op.READ, token=graph_token(request, params))
        node, edge = request.path_params["node"], request.path_params["edge"]
        if node in ("me", account.account_id) and edge in ("published_posts", "feed", "posts"):
            fields = fields_of(params) or ["id", "message", "created_time", "permalink_url"]
            limit = min(int(params.get("limit") or 25), 100)
            start = int(params.get("after") or 0)
            feed = [p for p in self.emu.posts_of(self.name, account.account_id) if p.media_type != "STORY"]
            posts = feed[start : start + limit]
            body: Json = {"data": [self.post_json(p, fields) for p in posts]}
            if posts:
                body["paging"] = {"cursors": {"before": str(start), "after": str(start + len(posts))}}
            return self.respond(account, body)
        if node in ("me", account.account_id) and edge == "stories":
            stories = [p for p in self.emu.posts_of(self.name, account.account_id) if p.media_type == "STORY"]
            return self.respond(account, {"data": [self.story_json(p) for p in stories]})
        if edge == "insights":
            post = self.emu.post(self.name, node)
            if post is not None and post.account_id == account.account_id:
                names = [m for m in as_str(params.get("metric")).split(",") if m] or DEFAULT_METRICS
                return self.respond(
                    account, insights_body(node, names, lambda name: self.emu.metric(self.name, node, name))
                )
        raise not_found(node)

    async def post_edge(self, request: Request) -> Response:
        params = await read_params(request)
        node, edge = request.path_params["node"], request.path_params["edge"]
        token = graph_token(request, params)
        unpublished = as_str(params.get("published", "true")).lower() == "false"
        video_start = edge in ("video_reels", "video_stories") and params.get("upload_phase") != "finish"
        op = Op.PREPARE if unpublished or video_start else Op.PUBLISH
        account = await self.gate(request, op, token=token)
        if node not in ("me", account.account_id):
            raise not_found(node, "post")
        match edge:
            case "feed":
                return self.respond(account, {"id": self.create_feed_post(account, params).remote_id})
            case "photos":
                return self.respond(account, self.create_photo(account, params, unpublished))
            case "videos":
                text = as_str(params.get("description"))
                self.check_duplicate(account, text)
                if not params.get("file_url"):
                    raise Rejection(Reason.INVALID, "(#100) The parameter file_url is required")
                post = self.record(account, text, "VIDEO")
                return self.respond(account, {"id": post.extra["video_id"]})
            case "video_reels":
                return self.respond(account, self.video(account, params, self.base_url(request), "reel"))
            case "video_stories":
                return self.respond(account, self.video(account, params, self.base_url(request), "story"))
            case "photo_stories":
                return self.respond(account, self.photo_story(account, params))
        raise not_found(node, "post")

    # flow

    def check_duplicate(self, account: Account, text: str) -> None:
        if self.emu.same_text(account, text) is not None:
            raise Rejection(Reason.DUPLICATE)

    def record(self, account: Account, text: str, media_type: str, **extra: object) -> Post:
        n = self.emu.next_id()
        remote_id = f"{account.account_id}_{n}"
        return self.emu.record_post(
            account,
            remote_id,
            text,
            media_type=media_type,
            permalink=f"https://www.facebook.com/{account.account_id}/posts/{n}",
            extra={"video_id": str(n), **extra},
        )

    def create_feed_post(self, account: Account, params: Json) -> Post:
        message, link = as_str(params.get("message")), as_str(params.get("link"))
        attached = self.attached_media(account, params)
        if not (message or link or attached):
            raise Rejection(Reason.INVALID, "(#100) Missing message or attachment")
        self.check_duplicate(account, message)
        media_type = "CAROUSEL" if len(attached) > 1 else ("PHOTO" if attached else ("LINK" if link else "TEXT"))
        post = self.record(account, message, media_type, link=link, attached_media=attached)
        for media_id in attached:
            self.media[media_id].post_id = post.remote_id
        return post

    def attached_media(self, account: Account, params: Json) -> list[str]:
        raw = params.get("attached_media")
        items: list[object] = list(raw) if isinstance(raw, list) else []
        items += [v for k, v in sorted(params.items()) if k.startswith("attached_media[")]
        ids: list[str] = []
        for item in items:
            value = json.loads(item) if isinstance(item, str) else item
            media_id = as_str(value.get("media_fbid")) if isinstance(value, dict) else ""
            media = self.media.get(media_id)
            if media is None or media.account is not account or media.kind != "photo":
                raise Rejection(Reason.INVALID, f"(#100) attached_media: unknown media_fbid {media_id!r}")
            ids.append(media_id)
        return ids

    def create_photo(self, account: Account, params: Json, unpublished: bool) -> Json:
        if not params.get("url"):
            raise Rejection(Reason.INVALID, "(#100) The parameter url is required")
        if unpublished:
            media = Media(
                id=str(self.emu.next_id()), account=account, kind="photo", url=as_str(params["url"]), uploaded=True
            )
            self.media[media.id] = media
            return {"id": media.id}
        text = as_str(params.get("caption") or params.get("message"))
        self.check_duplicate(account, text)
        post = self.record(account, text, "PHOTO", url=as_str(params.get("url")))
        return {"id": post.extra["video_id"], "post_id": post.remote_id}

    def video(self, account: Account, params: Json, base_url: str, kind: str) -> Json:
        """video_reels (kind reel) and video_stories (kind story): start an upload session, or finish
        an uploaded one, which publishes it once."""
        phase = as_str(params.get("upload_phase"))
        if phase == "start":
            media = Media(id=str(self.emu.next_id()), account=account, kind=kind)
            self.media[media.id] = media
            return {"video_id": media.id, "upload_url": f"{base_url}/video-upload/{media.id}"}
        if phase != "finish":
            raise Rejection(Reason.INVALID, "(#100) upload_phase must be start or finish")
        session = self.media.get(as_str(params.get("video_id")))
        if session is None or session.account is not account or session.kind != kind:
            raise Rejection(Reason.INVALID, "(#100) Unknown video_id")
        media = session
        if not media.uploaded:
            raise Rejection(Reason.INVALID, "(#6000) The video has not been uploaded")
        if media.post_id is not None:
            raise Rejection(Reason.INVALID, f"(#100) The {kind} has already been published")
        if kind == "story":
            return self.story(account, media, "video")
        text = as_str(params.get("description"))
        self.check_duplicate(account, text)
        post = self.record(account, text, "REELS", reel_video_id=media.id)
        media.post_id = post.remote_id
        return {"success": True}

    def photo_story(self, account: Account, params: Json) -> Json:
        media = self.media.get(as_str(params.get("photo_id")))
        if media is None or media.account is not account or media.kind != "photo":
            raise Rejection(Reason.INVALID, "(#100) Unknown photo_id")
        if media.post_id is not None:  # Facebook refuses media already used in a published post
            raise Rejection(Reason.INVALID, "(#100) The photo has already been used in a published post")
        return self.story(account, media, "photo")

    def story(self, account: Account, media: Media, media_type: str) -> Json:
        """A story has no text: it is recorded under its media URL, so the same media twice counts as a duplicate."""
        post = self.record(account, media.url, "STORY", story_media_id=media.id, story_media_type=media_type)
        media.post_id = post.remote_id
        return {"success": True, "post_id": post.remote_id}

    def story_json(self, post: Post) -> Json:
        return {
            "post_id": post.remote_id,
            "status": "PUBLISHED",
            "creation_time": str(int(post.created_at)),
            "media_type": post.extra["story_media_type"],
            "media_id": post.extra["story_media_id"],
            "url": post.permalink,
        }

    def page_json(self, account: Account, fields: list[str]) -> Json:
        """The page node; `followers_count` and `fan_count` (page likes) when asked for."""
        body: Json = {"id": account.account_id, "name": account.username}
        for name in ("followers_count", "fan_count"):
            if name in fields:
                body[name] = self.emu.account_metric(account, name)
        return body

    def engagement_json(self, post: Post, fields: list[str]) -> Json:
        """The post's comments, shares and reactions as Graph expands them, e.g.
        `fields=comments.summary(true).limit(0),shares,reactions.summary(true).limit(0)`;
        `shares` is left out when nobody shared the post, as Graph does."""
        body: Json = {}
        roots = {f.split(".", 1)[0]: f for f in fields}
        for edge in ("comments", "reactions"):
            if edge in roots:
                summary: Json = {"total_count": self.emu.metric(self.name, post.remote_id, edge)}
                body[edge] = {"data": [], "summary": summary} if "summary(true)" in roots[edge] else {"data": []}
        shares = self.emu.metric(self.name, post.remote_id, "shares")
        if "shares" in roots and shares > 0:
            body["shares"] = {"count": shares}
        return body

    def post_json(self, post: Post, fields: list[str]) -> Json:
        values: Json = {
            "id": post.remote_id,
            "message": post.text,
            "created_time": graph_time(post.created_at),
            "permalink_url": post.permalink,
        }
        return {"id": post.remote_id} | {f: values[f] for f in fields if f in values}

    def render(self, rejection: Rejection) -> Response:  # noqa: PLR0911 - one return per error shape
        r, msg = rejection.reason, rejection.message
        match r:
            case Reason.TOKEN_INVALID | Reason.TOKEN_EXPIRED | Reason.TOKEN_REVOKED | Reason.REFRESH_INVALID:
                return token_error(rejection)
            case Reason.RATE_LIMITED:
                return graph_error(32, msg or "(#32) Page request limit reached", transient=True)
            case Reason.QUOTA_REACHED:
                return graph_error(
                    80001,
                    msg or "(#80001) There have been too many calls to this Page account. Wait a bit and try again.",
                    transient=True,
                )
            case Reason.SERVER_ERROR:
                return graph_error(
                    2,
                    msg or "An unexpected error has occurred. Please retry your request later.",
                    status=rejection.status or 500,
                    transient=True,
                )
            case Reason.CONTENT_REJECTED:
                return graph_error(
                    100,
                    "Invalid parameter",
                    subcode=1349125,
                    user_title="Content not allowed",
                    user_msg=msg or "The content of this post could not be published.",
                )
            case Reason.SPAM:
                return graph_error(
                    368,
                    "The action attempted has been deemed abusive or is otherwise disallowed",
                    subcode=1390008,
                    user_title="You Can't Use This Feature Right Now",
                    user_msg=msg or "We restrict certain activity to protect our community.",
                )
            case Reason.DUPLICATE:
                return graph_error(
                    506,
                    "Duplicate status message",
                    subcode=1455006,
                    user_title="Duplicate Post",
                    user_msg="This status update is identical to the last one you posted. Try posting something "
                    "different, or delete your previous update.",
                )
            case Reason.NOT_FOUND:
                return graph_error(100, msg, subcode=33, error_type="GraphMethodException")
            case _:
                return graph_error(100, msg or "Invalid parameter")
