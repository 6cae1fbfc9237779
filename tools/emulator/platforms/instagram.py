"""Instagram Graph API (base replaces https://graph.facebook.com/v21.0)."""

from __future__ import annotations

from tools.emulator.errors import Reason, Rejection
from tools.emulator.platforms.graph_media import HASHTAG, MENTION, GraphMediaPlatform, shortcode
from tools.emulator.state import Account


class Instagram(GraphMediaPlatform):
    name = "instagram"
    container_edge = "media"
    publish_edge = "media_publish"
    limit_edge = "content_publishing_limit"
    account_insights_edge = "insights"
    status_field = "status_code"
    text_field = "caption"
    max_text = 2200
    max_children = 10
    refresh_grant = "ig_refresh_token"
    media_types = frozenset({"IMAGE", "VIDEO", "REELS", "STORIES", "CAROUSEL"})
    default_media_type = "IMAGE"
    id_base = 17_890_000_000_000_000

    def permalink(self, account: Account, n: int, media_type: str) -> str:
        kind = "reel" if media_type == "REELS" else "p"
        return f"https://www.instagram.com/{kind}/{shortcode(n)}/"

    def validate_text(self, text: str) -> None:
        super().validate_text(text)
        if len(HASHTAG.findall(text)) > 30:
            raise Rejection(Reason.CONTENT_REJECTED, "The caption has more than 30 hashtags.")
        if len(MENTION.findall(text)) > 20:
            raise Rejection(Reason.CONTENT_REJECTED, "The caption has more than 20 mentions.")
