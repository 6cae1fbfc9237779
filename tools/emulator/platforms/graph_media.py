"""The container flow Instagram and Threads share: create a container, wait for it to finish processing,
publish it, read it back. `instagram.py` and `threads.py` set the names and limits that differ."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import ClassVar

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

HASHTAG = re.compile(r"(?<!\w)#\w+")
MENTION = re.compile(r"(?<!\w)@[\w.]+")
_UNLIMITED = 1_000_000
TOTAL_VALUE_METRICS = frozenset({"followers_count"})


@dataclass(eq=False)
class Container:
    id: str
    account: Account
    media_type: str
    text: str
    media_urls: list[str]
    children: list[str]
    is_carousel_item: bool
    created_at: float
    ready_at: float
    outcome: str
    media_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def status(self, now: float, ttl: float) -> str:
        if self.media_id is not None:
            return "PUBLISHED"
        if now < self.ready_at:
            return "IN_PROGRESS"
        if self.outcome == "error":
            return "ERROR"
        if self.outcome == "expired" or now >= self.created_at + ttl:
            return "EXPIRED"
        return "FINISHED"


def shortcode(n: int) -> str:
    """An 11-character code like Instagram's, derived from a counter so it is unique and stable."""
    return base64.urlsafe_b64encode(hashlib.blake2b(n.to_bytes(8, "big"), digest_size=8).digest()).decode()[:11]


class GraphMediaPlatform(Platform):
    container_edge: ClassVar[str]
    publish_edge: ClassVar[str]
    limit_edge: ClassVar[str]
    account_insights_edge: ClassVar[str]
    status_field: ClassVar[str]
    text_field: ClassVar[str]
    max_text: ClassVar[int]
    max_children: ClassVar[int]
    refresh_grant: ClassVar[str]
    media_types: ClassVar[frozenset[str]]
    default_media_type: ClassVar[str]
    id_base: ClassVar[int]

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.containers: dict[str, Container] = {}
        emulator.on_reset(self.containers.clear)

    def routes(self) -> list[Route]:
        return [
            self.route("/refresh_access_token", self.refresh_access_token, ["GET"]),
            self.route("/{node}", self.get_node, ["GET"]),
            self.route("/{node}/{edge}", self.get_edge, ["GET"]),
            self.route("/{node}/{edge}", self.post_edge, ["POST"]),
        ]

    # platform specifics

    def permalink(self, account: Account, n: int, media_type: str) -> str:
        raise NotImplementedError

    def validate_text(self, text: str) -> None:
        if len(text) > self.max_text:
            raise Rejection(
                Reason.CONTENT_REJECTED, f"The {self.text_field} is too long: at most {self.max_text} characters."
            )

    # handlers

    async def refresh_access_token(self, request: Request) -> Response:
        params = await read_params(request)
        await self.gate_open(request)
        if params.get("grant_type") != self.refresh_grant:
            raise Rejection(Reason.INVALID, f"grant_type must be {self.refresh_grant}")
        account = self.emu.extend_access_token(self.name, graph_token(request, params))
        expires_in = round(account.access_expires_at - self.emu.now()) if account.access_expires_at else None
        return json_response({"access_token": account.access_token, "token_type": "bearer", "expires_in": expires_in})

    async def get_node(self, request: Request) -> Response:
        params = await read_params(request)
        account = await self.gate(request, Op.READ, token=graph_token(request, params))
        node = request.path_params["node"]
        fields = fields_of(params)
        if node in ("me", account.account_id):
            return json_response(self.user_json(account, fields))
        container = self.containers.get(node)
        if container is not None and container.account is account:
            return json_response(self.container_json(container, fields))
        post = self.emu.post(self.name, node)
        if post is not None and post.account_id == account.account_id:
            return json_response(self.media_json(post, account, fields or ["id"]))
        raise not_found(node)

    async def get_edge(self, request: Request) -> Response:
        params = await read_params(request)
        account = await self.gate(request, Op.READ, token=graph_token(request, params))
        node, edge = request.path_params["node"], request.path_params["edge"]
        if node in ("me", account.account_id):
            if edge == self.container_edge:
                return json_response(self.list_media(account, params))
            if edge == self.limit_edge:
                return json_response(self.publishing_limit(account, fields_of(params)))
            if edge == self.account_insights_edge:
                return json_response(self.account_insights(account, params))
        elif edge == "insights":
            post = self.emu.post(self.name, node)
            if post is not None and post.account_id == account.account_id:
                return json_response(self.insights(post, params))
        raise not_found(node)

    async def post_edge(self, request: Request) -> Response:
        params = await read_params(request)
        node, edge = request.path_params["node"], request.path_params["edge"]
        op = Op.PUBLISH if edge == self.publish_edge else Op.PREPARE
        account = await self.gate(request, op, token=graph_token(request, params))
        if node not in ("me", account.account_id):
            raise not_found(node, "post")
        if edge == self.container_edge:
            return json_response({"id": self.create_container(account, params).id})
        if edge == self.publish_edge:
            return json_response({"id": self.publish(account, as_str(params.get("creation_id")))})
        raise not_found(node, "post")

    # flow

    def create_container(self, account: Account, params: Json) -> Container:
        media_type = as_str(params.get("media_type")).upper() or self.default_media_type
        if media_type not in self.media_types:
            raise Rejection(Reason.INVALID, f"Param media_type must be one of {sorted(self.media_types)}")
        text = as_str(params.get(self.text_field))
        self.validate_text(text)
        urls = [as_str(params[k]) for k in ("image_url", "video_url") if params.get(k)]
        children = [c for c in as_str(params.get("children")).split(",") if c]
        if media_type == "CAROUSEL":
            if not 2 <= len(children) <= self.max_children:
                raise Rejection(Reason.INVALID, f"A carousel needs 2 to {self.max_children} children.")
            for child in children:
                item = self.containers.get(child)
                if item is None or item.account is not account or not item.is_carousel_item:
                    raise Rejection(Reason.INVALID, f"Param children: {child} is not a carousel item container.")
        elif media_type != "TEXT" and not urls:
            raise Rejection(Reason.INVALID, "The parameter image_url or video_url is required.")
        now = self.emu.now()
        processing = self.emu.processing_for(self.name)
        container = Container(
            id=str(self.id_base + self.emu.next_id()),
            account=account,
            media_type=media_type,
            text=text,
            media_urls=urls,
            children=children,
            is_carousel_item=as_str(params.get("is_carousel_item")).lower() == "true",
            created_at=now,
            ready_at=now + processing.delay_s,
            outcome=processing.outcome,
        )
        self.containers[container.id] = container
        return container

    def publish(self, account: Account, creation_id: str) -> str:
        container = self.containers.get(creation_id)
        if not creation_id:
            raise Rejection(Reason.INVALID, "The parameter creation_id is required.")
        if container is None or container.account is not account or container.is_carousel_item:
            raise not_found(creation_id, "post")
        match container.status(self.emu.now(), self.emu.config.container_ttl_s):
            case "IN_PROGRESS":
                raise Rejection(Reason.NOT_READY)
            case "ERROR":
                raise Rejection(Reason.CONTAINER_ERROR)
            case "EXPIRED":
                raise Rejection(Reason.CONTAINER_EXPIRED)
            case "PUBLISHED":
                raise Rejection(Reason.ALREADY_PUBLISHED, f"The container {creation_id} has already been published.")
        n = self.emu.next_id()
        media_id = str(self.id_base + 1_000_000_000 + n)
        self.emu.record_post(
            account,
            media_id,
            container.text,
            media_type=container.media_type,
            permalink=self.permalink(account, n, container.media_type),
            extra={"container_id": container.id, "children": container.children},
        )
        container.media_id = media_id
        return media_id

    # read models

    def user_json(self, account: Account, fields: list[str]) -> Json:
        body: Json = {"id": account.account_id, "username": account.username}
        if "name" in fields:
            body["name"] = account.username.replace("_", " ").title()
        if "media_count" in fields:
            body["media_count"] = len(self.emu.posts_of(self.name, account.account_id))
        if "followers_count" in fields:
            body["followers_count"] = self.emu.account_metric(account, "followers_count")
        return body

    def account_insights(self, account: Account, params: Json) -> Json:
        """Account-level insights (`reach` per day on Instagram, `followers_count` on Threads); a
        total-value metric like followers_count answers with `total_value`, as the platforms do."""
        names = [m for m in as_str(params.get("metric")).split(",") if m]
        if not names:
            raise Rejection(Reason.INVALID, "(#100) The parameter metric is required")
        body = insights_body(account.account_id, names, lambda name: self.emu.account_metric(account, name))
        for entry in body["data"]:
            entry["period"] = as_str(params.get("period") or "day")
            if entry["name"] in TOTAL_VALUE_METRICS:
                entry["total_value"] = entry.pop("values")[0]
        return body

    def container_json(self, container: Container, fields: list[str]) -> Json:
        status = container.status(self.emu.now(), self.emu.config.container_ttl_s)
        body: Json = {"id": container.id}
        if not fields or self.status_field in fields:
            body[self.status_field] = status
        if "error_message" in fields and status == "ERROR":
            body["error_message"] = "FAILED_DOWNLOADING_MEDIA"
        return body

    def media_json(self, post: Post, account: Account, fields: list[str]) -> Json:
        values: Json = {
            "id": post.remote_id,
            self.text_field: post.text,
            "timestamp": graph_time(post.created_at),
            "permalink": post.permalink,
            "media_type": post.media_type,
            "media_product_type": "REELS" if post.media_type == "REELS" else "FEED",
            "username": account.username,
            "shortcode": (post.permalink or "").rstrip("/").rsplit("/", 1)[-1],
            "like_count": self.emu.metric(self.name, post.remote_id, "likes"),
            "comments_count": self.emu.metric(self.name, post.remote_id, "comments"),
        }
        return {"id": post.remote_id} | {f: values[f] for f in fields if f in values}

    def list_media(self, account: Account, params: Json) -> Json:
        fields = fields_of(params) or ["id"]
        limit = min(int(params.get("limit") or 25), 100)
        start = int(params.get("after") or 0)
        posts = self.emu.posts_of(self.name, account.account_id)
        page = posts[start : start + limit]
        body: Json = {"data": [self.media_json(p, account, fields) for p in page]}
        if page:
            cursors = {"before": str(start), "after": str(start + len(page))}
            body["paging"] = {"cursors": cursors} | ({"next": "after"} if start + len(page) < len(posts) else {})
        return body

    def publishing_limit(self, account: Account, fields: list[str]) -> Json:
        limits = self.emu.limits_of(account)
        usage = account.usage.published_in_window(limits, self.emu.now())
        total = limits.publish_limit if limits.publish_limit is not None else _UNLIMITED
        entry: Json = {
            "quota_usage": usage,
            "config": {"quota_total": total, "quota_duration": int(limits.publish_window_s)},
        }
        if fields:
            entry = {k: v for k, v in entry.items() if k in fields}
        return {"data": [entry]}

    def insights(self, post: Post, params: Json) -> Json:
        names = [m for m in as_str(params.get("metric")).split(",") if m]
        if not names:
            raise Rejection(Reason.INVALID, "(#100) The parameter metric is required")
        if self.emu.not_enough_viewers(self.name, post.remote_id):
            raise Rejection(Reason.NOT_ENOUGH_VIEWERS)
        return insights_body(post.remote_id, names, lambda name: self.emu.metric(self.name, post.remote_id, name))

    # errors

    def render(self, rejection: Rejection) -> Response:  # noqa: PLR0911 - one return per error shape
        r, msg = rejection.reason, rejection.message
        match r:
            case Reason.TOKEN_INVALID | Reason.TOKEN_EXPIRED | Reason.TOKEN_REVOKED | Reason.REFRESH_INVALID:
                return token_error(rejection)
            case Reason.RATE_LIMITED:
                return graph_error(17, msg or "(#17) User request limit reached", transient=True)
            case Reason.QUOTA_REACHED:
                return graph_error(
                    9,
                    msg or "Application request limit reached",
                    subcode=2207042,
                    user_title="Maximum number of posts reached",
                    user_msg="You reached maximum number of posts that is allowed to be published by "
                    "Content Publishing API.",
                )
            case Reason.SERVER_ERROR:
                return graph_error(
                    2,
                    msg or "An unexpected error has occurred. Please retry your request later.",
                    subcode=2207001,
                    status=rejection.status or 500,
                    transient=True,
                )
            case Reason.CONTENT_REJECTED:
                return graph_error(
                    36000,
                    "Invalid parameter",
                    subcode=2207004,
                    user_title="Media could not be published",
                    user_msg=msg or "The image is too large to download. It should be less than 8 MiB.",
                )
            case Reason.SPAM:
                return graph_error(
                    4,
                    "Application request limit reached",
                    subcode=2207051,
                    user_title="Action is blocked",
                    user_msg=msg
                    or "We restrict certain activity to protect our community. Tell us if you think we made a mistake.",
                )
            case Reason.NOT_READY:
                return graph_error(
                    9007,
                    "Media ID is not available",
                    subcode=2207027,
                    user_title="Media not ready for publishing",
                    user_msg="The media is not ready for publishing, please wait for a moment",
                )
            case Reason.CONTAINER_EXPIRED:
                return graph_error(
                    100,
                    "Invalid parameter",
                    subcode=2207020,
                    user_title="Media expired",
                    user_msg="The media you are trying to access has expired. Please try to upload again.",
                )
            case Reason.CONTAINER_ERROR:
                return graph_error(
                    9004,
                    "Media download has failed. The media URI doesn't meet our requirements.",
                    subcode=2207052,
                    user_title="Media download failed",
                    user_msg="The media could not be fetched from the URI.",
                )
            case Reason.NOT_ENOUGH_VIEWERS:
                return graph_error(10, "(#10) Not enough viewers for the media to show insights")
            case Reason.NOT_FOUND:
                return graph_error(100, msg, subcode=33, error_type="GraphMethodException")
            case _:
                return graph_error(100, msg or "Invalid parameter", error_type="OAuthException")
