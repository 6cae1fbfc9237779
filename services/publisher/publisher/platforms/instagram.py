"""Instagram Graph API: container, wait for FINISHED, media_publish (PLATFORMS.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from publisher.domain import CaptionRules
from publisher.platforms.graph import ContainerFlow
from shared.events import Platform, PostDue, PostFormat


class Instagram(ContainerFlow):
    platform = Platform.INSTAGRAM
    container_edge = "media"
    publish_edge = "media_publish"
    limit_edge = "content_publishing_limit"
    status_field = "status_code"
    text_field = "caption"
    refresh_grant = "ig_refresh_token"
    max_children = 10
    formats = frozenset({PostFormat.POST, PostFormat.REEL, PostFormat.CAROUSEL, PostFormat.STORY})
    caption_rules = CaptionRules(max_chars=2200, max_hashtags=30, max_mentions=20)

    def media_type(self, job: PostDue) -> str:
        match job.format:
            case PostFormat.CAROUSEL:
                return "CAROUSEL"
            case PostFormat.STORY:
                return "STORIES"
            case PostFormat.REEL:
                return "REELS"
        # A feed video is a reel on Instagram now.
        return "REELS" if job.media and job.media[0].type == "video" else "IMAGE"

    def content_problem(self, job: PostDue, profile: Mapping[str, Any]) -> str | None:
        if not job.media:
            return "Instagram cannot publish a post without an image or video"
        if job.format is PostFormat.REEL and job.media[0].type != "video":
            return "a reel needs a video"
        return super().content_problem(job, profile)
