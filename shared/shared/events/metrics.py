"""Events about insights pulled back from the platforms."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events.envelope import Event, Platform


class CanonicalMetrics(BaseModel):
    """Platform metric names mapped onto one set. None means the platform gave no value, not zero."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    views: int | None = None
    reach: int | None = None
    likes: int | None = None
    comments: int | None = None
    shares: int | None = None
    saves: int | None = None
    clicks: int | None = None


class PostMetricsSynced(Event):
    event_type: Literal["PostMetricsSynced"] = "PostMetricsSynced"
    post_id: str = Field(min_length=1)
    asset_id: str | None = None
    platform: Platform
    account_id: str = Field(min_length=1)
    metrics: CanonicalMetrics
    raw: dict[str, Any] = Field(default_factory=dict)
    collected_at: AwareDatetime
    reason: str = Field(description="first, day, nightly, refresh or catch_up")
