"""Why a platform call was refused; each platform module renders a `Rejection` in its own error shape."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    TOKEN_INVALID = "token_invalid"  # noqa: S105
    TOKEN_EXPIRED = "token_expired"  # noqa: S105
    TOKEN_REVOKED = "token_revoked"  # noqa: S105
    REFRESH_INVALID = "refresh_invalid"
    RATE_LIMITED = "rate_limited"  # per-window request limit
    QUOTA_REACHED = "quota_reached"  # publishing quota of the rolling window
    SERVER_ERROR = "server_error"
    CONTENT_REJECTED = "content_rejected"
    SPAM = "spam"
    DUPLICATE = "duplicate"
    INVALID = "invalid"  # malformed request
    NOT_FOUND = "not_found"
    NOT_READY = "not_ready"  # container / media still processing
    CONTAINER_EXPIRED = "container_expired"
    CONTAINER_ERROR = "container_error"
    ALREADY_PUBLISHED = "already_published"
    NOT_ENOUGH_VIEWERS = "not_enough_viewers"
    PRIVACY_MISMATCH = "privacy_mismatch"
    VERSION_MISSING = "version_missing"
    VERSION_RETIRED = "version_retired"
    CHAT_MIGRATED = "chat_migrated"
    SCOPE_MISSING = "scope_missing"


class Rejection(Exception):
    """A refused platform call. `message` overrides the platform's default wording when set."""

    def __init__(
        self,
        reason: Reason,
        message: str = "",
        *,
        retry_after: int | None = None,
        status: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(reason.value, message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.status = status
        self.detail = detail or {}


class ConnectionDropped(Exception):
    """Raised after the response has started so the server closes the connection (a lost response)."""
