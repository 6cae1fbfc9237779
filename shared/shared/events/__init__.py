"""The public event contract: every event of DESIGN.md section 3 as a pydantic model."""

from shared.events.accounts import AccountStatusChanged, AccountVerifyRequested
from shared.events.assets import AssetApproved, AssetRejected, MediaRef, RegenerationRequested, Schedule, Target
from shared.events.codec import MalformedEvent, UnknownEventType, decode, encode, headers
from shared.events.envelope import AccountStatus, ErrorCode, Event, Platform, PostFormat, utc_now
from shared.events.metrics import CanonicalMetrics, PostMetricsSynced
from shared.events.posts import (
    PostCancelled,
    PostCancelRequested,
    PostContent,
    PostDue,
    PostEvent,
    PostFailed,
    PostHeld,
    PostPublished,
    PostRescheduleRequested,
    PostRetryRequested,
    PostRetryScheduled,
    PostScheduled,
)

ALL_EVENTS: tuple[type[Event], ...] = (
    AssetApproved,
    AssetRejected,
    RegenerationRequested,
    PostCancelRequested,
    PostRescheduleRequested,
    PostRetryRequested,
    PostScheduled,
    PostDue,
    PostPublished,
    PostFailed,
    PostRetryScheduled,
    PostHeld,
    PostCancelled,
    AccountVerifyRequested,
    AccountStatusChanged,
    PostMetricsSynced,
)

__all__ = [
    "ALL_EVENTS",
    "AccountStatus",
    "AccountStatusChanged",
    "AccountVerifyRequested",
    "AssetApproved",
    "AssetRejected",
    "CanonicalMetrics",
    "ErrorCode",
    "Event",
    "MalformedEvent",
    "MediaRef",
    "Platform",
    "PostCancelRequested",
    "PostCancelled",
    "PostContent",
    "PostDue",
    "PostEvent",
    "PostFailed",
    "PostFormat",
    "PostHeld",
    "PostMetricsSynced",
    "PostPublished",
    "PostRescheduleRequested",
    "PostRetryRequested",
    "PostRetryScheduled",
    "PostScheduled",
    "RegenerationRequested",
    "Schedule",
    "Target",
    "UnknownEventType",
    "decode",
    "encode",
    "headers",
    "utc_now",
]
