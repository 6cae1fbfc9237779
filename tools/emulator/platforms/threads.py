"""Threads API (base replaces https://graph.threads.net/v1.0)."""

from __future__ import annotations

from tools.emulator.platforms.base import Json
from tools.emulator.platforms.graph_media import GraphMediaPlatform, shortcode
from tools.emulator.state import Account


class Threads(GraphMediaPlatform):
    name = "threads"
    container_edge = "threads"
    publish_edge = "threads_publish"
    limit_edge = "threads_publishing_limit"
    account_insights_edge = "threads_insights"
    status_field = "status"
    text_field = "text"
    max_text = 500
    max_children = 20
    refresh_grant = "th_refresh_token"
    media_types = frozenset({"TEXT", "IMAGE", "VIDEO", "CAROUSEL"})
    default_media_type = "TEXT"
    id_base = 18_000_000_000_000_000

    def permalink(self, account: Account, n: int, media_type: str) -> str:
        return f"https://www.threads.net/@{account.username}/post/{shortcode(n)}"

    def publishing_limit(self, account: Account, fields: list[str]) -> Json:
        body = super().publishing_limit(account, fields)
        if not fields or "reply_quota_usage" in fields:
            body["data"][0]["reply_quota_usage"] = 0
        if not fields or "reply_config" in fields:
            body["data"][0]["reply_config"] = {"quota_total": 1000, "quota_duration": 86400}
        return body
