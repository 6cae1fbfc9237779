"""Threads API: the Instagram container flow with Threads' names and limits (PLATFORMS.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from publisher.domain import CaptionRules
from publisher.platforms.graph import ContainerFlow
from shared.events import Platform, PostDue, PostFormat


class Threads(ContainerFlow):
    platform = Platform.THREADS
    container_edge = "threads"
    publish_edge = "threads_publish"
    limit_edge = "threads_publishing_limit"
    status_field = "status"
    text_field = "text"
    refresh_grant = "th_refresh_token"
    max_children = 20
    formats = frozenset({PostFormat.POST, PostFormat.REEL, PostFormat.CAROUSEL})
    caption_rules = CaptionRules(max_chars=500, name="text")

    def media_type(self, job: PostDue) -> str:
        if job.format is PostFormat.CAROUSEL:
            return "CAROUSEL"
        if not job.media:
            return "TEXT"
        return "VIDEO" if job.media[0].type == "video" else "IMAGE"

    def content_problem(self, job: PostDue, profile: Mapping[str, Any]) -> str | None:
        if job.format is PostFormat.REEL and (not job.media or job.media[0].type != "video"):
            return "a Threads video post needs a video"
        return super().content_problem(job, profile)
