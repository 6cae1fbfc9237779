"""One valid instance of every event, for round-trip and contract tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.events import (
    ALL_EVENTS,
    AccountStatus,
    CanonicalMetrics,
    ErrorCode,
    Event,
    MediaRef,
    Platform,
    PostFormat,
    Schedule,
    Target,
)

WHEN = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
_ENVELOPE = {"producer": "tests", "workspace_id": "ws-1", "correlation_id": "asset-1"}
_POST = {"post_id": "post-1", "asset_id": "asset-1", "platform": Platform.INSTAGRAM, "account_id": "acct-1"}
_CONTENT = {
    **_POST,
    "target_id": "t1",
    "format": PostFormat.REEL,
    "caption": "Launch day #new",
    "media": [MediaRef(url="https://cdn.example/v.mp4", type="video", duration_seconds=12.5)],
    "options": {"share_to_feed": True},
    "campaign": "spring",
    "due_at": WHEN,
}

_PAYLOADS: dict[str, dict[str, Any]] = {
    "AssetApproved": {
        "asset_id": "asset-1",
        "caption": "Launch day",
        "targets": [Target(target_id="t1", platform=Platform.X, account_id="acct-1", format=PostFormat.POST)],
        "schedule": Schedule(local_time=datetime(2026, 11, 23, 9, 0), timezone="Europe/Berlin"),
    },
    "AssetRejected": {"asset_id": "asset-1", "status": "rejected", "reason": "off brand"},
    "RegenerationRequested": {"asset_id": "asset-1", "version": 1, "feedback": "shorter please"},
    "PostCancelRequested": {"post_id": "post-1", "reason": "typo"},
    "PostRescheduleRequested": {"post_id": "post-1", "schedule": Schedule(at_utc=WHEN)},
    "PostRetryRequested": {"post_id": "post-1", "requested_by": "key-1"},
    "PostScheduled": _CONTENT,
    "PostDue": {**_CONTENT, "attempt": 2},
    "PostPublished": {
        **_POST,
        "remote_id": "1789",
        "permalink": "https://instagram.example/p/1789",
        "published_at": WHEN,
        "attempt": 1,
    },
    "PostFailed": {
        **_POST,
        "error_code": ErrorCode.CONTENT_REJECTED,
        "error_message": "Aspect ratio not supported",
        "platform_error": {"code": 36000, "error_subcode": 2207009},
        "attempts": 1,
    },
    "PostRetryScheduled": {
        **_POST,
        "error_code": ErrorCode.NETWORK_ERROR,
        "error_message": "502",
        "attempt": 1,
        "next_attempt": 2,
        "next_attempt_at": WHEN,
    },
    "PostHeld": {**_POST, "error_code": ErrorCode.TOKEN_EXPIRED, "reason": "reconnect the account", "attempt": 1},
    "PostCancelled": {**_POST, "reason": "typo"},
    "PostCommandRejected": {
        "post_id": "post-1",
        "command": "PostCancelRequested",
        "command_event_id": "6f0c7c34-4a9e-4f7f-9b8e-2f1d9a2b6c01",
        "reason": "already published",
        "post_state": "published",
    },
    "AccountVerifyRequested": {"account_id": "acct-1", "platform": Platform.TIKTOK},
    "AccountStatusChanged": {
        "account_id": "acct-1",
        "platform": Platform.TIKTOK,
        "status": AccountStatus.REVOKED,
        "previous_status": AccountStatus.ACTIVE,
    },
    "PostMetricsSynced": {
        **_POST,
        "metrics": CanonicalMetrics(views=10, likes=2),
        "raw": {"views": 10},
        "collected_at": WHEN,
        "reason": "first",
    },
}


def sample(cls: type[Event], **overrides: Any) -> Event:
    return cls(**{**_ENVELOPE, **_PAYLOADS[cls.type_name()], **overrides})


def all_samples() -> list[Event]:
    return [sample(cls) for cls in ALL_EVENTS]
