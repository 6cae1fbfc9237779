"""Events about posts: one asset on one target account."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, Field

from shared.events.assets import MediaRef, Schedule
from shared.events.envelope import ErrorCode, Event, Platform, PostFormat


class PostCommand(Event):
    post_id: str = Field(min_length=1)
    requested_by: str | None = None


class PostCancelRequested(PostCommand):
    event_type: Literal["PostCancelRequested"] = "PostCancelRequested"
    reason: str | None = None


class PostRescheduleRequested(PostCommand):
    event_type: Literal["PostRescheduleRequested"] = "PostRescheduleRequested"
    schedule: Schedule


class PostRetryRequested(PostCommand):
    """A person decided to try a failed or unconfirmed post again."""

    event_type: Literal["PostRetryRequested"] = "PostRetryRequested"


class PostEvent(Event):
    post_id: str = Field(min_length=1)
    asset_id: str = Field(min_length=1)
    platform: Platform
    account_id: str = Field(min_length=1)


class PostContent(PostEvent):
    """Everything a publisher needs to publish, except secrets."""

    target_id: str = Field(min_length=1)
    format: PostFormat
    caption: str = ""
    media: list[MediaRef] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)
    campaign: str | None = None
    due_at: AwareDatetime
    timezone: str | None = Field(default=None, description="The account's IANA zone, for local-time reschedules")


class PostScheduled(PostContent):
    event_type: Literal["PostScheduled"] = "PostScheduled"
    attempt: int = Field(default=1, ge=1, description="The attempt this schedule is for (retries and releases: > 1)")


class PostDue(PostContent):
    event_type: Literal["PostDue"] = "PostDue"
    attempt: int = Field(ge=1)


class PostPublished(PostEvent):
    event_type: Literal["PostPublished"] = "PostPublished"
    remote_id: str = Field(min_length=1)
    permalink: str | None = None
    published_at: AwareDatetime
    attempt: int = Field(ge=1)
    campaign: str | None = None
    visibility: str | None = Field(default=None, description="e.g. private when an unaudited app forces it")


class PostFailed(PostEvent):
    event_type: Literal["PostFailed"] = "PostFailed"
    error_code: ErrorCode
    error_message: str = Field(description="What the platform said, in its own words where it gave any")
    platform_error: dict[str, Any] | None = Field(default=None, description="Raw platform error, secrets removed")
    attempts: int = Field(ge=0)


class PostRetryScheduled(PostEvent):
    event_type: Literal["PostRetryScheduled"] = "PostRetryScheduled"
    error_code: ErrorCode
    error_message: str
    attempt: int = Field(ge=1, description="The attempt that did not succeed")
    next_attempt: int = Field(ge=1)
    next_attempt_at: AwareDatetime
    platform_error: dict[str, Any] | None = Field(
        default=None,
        description="Raw platform error of the attempt, secrets removed; null when the platform was not called "
        "(e.g. deferred by our own count of the rate window)",
    )


class PostHeld(PostEvent):
    event_type: Literal["PostHeld"] = "PostHeld"
    error_code: ErrorCode
    reason: str
    attempt: int = Field(ge=1)
    platform_error: dict[str, Any] | None = Field(
        default=None, description="Raw platform error that led to the hold, secrets removed"
    )


class PostCancelled(PostEvent):
    event_type: Literal["PostCancelled"] = "PostCancelled"
    reason: str | None = None
    requested_by: str | None = None


class PostCommandRejected(PostCommand):
    """A person's command that could not be carried out, with the reason they will see."""

    event_type: Literal["PostCommandRejected"] = "PostCommandRejected"
    command: str = Field(description="The refused command's event type, e.g. PostCancelRequested")
    command_event_id: str = Field(description="event_id of the refused command")
    reason: str
    post_state: str = Field(description="The post's state when the command arrived")
