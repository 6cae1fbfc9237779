"""Events about content items (assets) and their approval."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared.events.envelope import Event, Platform, PostFormat


class Part(BaseModel):
    """Base for value objects inside events: frozen and tolerant, like the envelope."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class MediaRef(Part):
    url: str = Field(min_length=1, description="Where the publisher fetches the media from")
    type: Literal["image", "video"]
    mime_type: str | None = None
    size_bytes: int | None = Field(default=None, ge=0)
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    duration_seconds: float | None = Field(default=None, ge=0)


class Target(Part):
    """One account on one platform that an asset is published to."""

    target_id: str = Field(min_length=1, description="Stable within the asset; with asset_id it makes post_id")
    platform: Platform
    account_id: str = Field(min_length=1)
    format: PostFormat
    caption: str | None = Field(default=None, description="Overrides the asset's caption for this target")
    options: dict[str, Any] = Field(default_factory=dict, description="Per-platform options, e.g. tiktok_inbox")
    timezone: str | None = Field(default=None, description="The account's IANA zone, used for local times")


class Schedule(Part):
    """When to publish: now, at a local wall time in an IANA zone, or at a UTC instant."""

    publish_now: bool = False
    local_time: datetime | None = Field(default=None, description="Wall-clock time without offset")
    timezone: str | None = Field(default=None, description="IANA zone for local_time; default: the account's")
    at_utc: AwareDatetime | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Self:
        kinds = [self.publish_now, self.local_time is not None, self.at_utc is not None]
        if sum(kinds) != 1:
            raise ValueError("a schedule is exactly one of publish_now, local_time or at_utc")
        if self.local_time is not None and self.local_time.tzinfo is not None:
            raise ValueError("local_time is a wall-clock time: give it without an offset and name the timezone")
        return self


class AssetApproved(Event):
    event_type: Literal["AssetApproved"] = "AssetApproved"
    asset_id: str = Field(min_length=1)
    version: int = Field(default=1, ge=1)
    caption: str = ""
    media: list[MediaRef] = Field(default_factory=list)
    targets: list[Target] = Field(min_length=1)
    schedule: Schedule
    campaign: str | None = None
    approved_by: str | None = None
    auto_approved: bool = False
    approval_policy: str | None = Field(default=None, description="The policy that auto-approved it, if any")
    approval_policies: list[str] = Field(
        default_factory=list,
        description="Every approval policy that auto-approved it, as scope ids: 'workspace', "
        "'account:<account_id>', 'campaign:<name>' (one per distinct policy of its targets); empty when a "
        "person approved it. approval_policy holds the same ids joined by ', '.",
    )


class AssetRejected(Event):
    event_type: Literal["AssetRejected"] = "AssetRejected"
    asset_id: str = Field(min_length=1)
    status: Literal["rejected", "discarded"]
    reason: str
    rejected_by: str | None = None


class RegenerationRequested(Event):
    event_type: Literal["RegenerationRequested"] = "RegenerationRequested"
    asset_id: str = Field(min_length=1)
    version: int = Field(ge=1, description="The version the feedback is about")
    feedback: str = Field(min_length=1)
    requested_by: str | None = None
