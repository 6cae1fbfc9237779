"""The envelope every event carries, and the enums that are part of the public contract."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


def utc_now() -> datetime:
    return datetime.now(UTC)


class Platform(StrEnum):
    INSTAGRAM = "instagram"
    FACEBOOK = "facebook"
    X = "x"
    TIKTOK = "tiktok"
    YOUTUBE = "youtube"
    LINKEDIN = "linkedin"
    THREADS = "threads"
    PINTEREST = "pinterest"
    TELEGRAM = "telegram"


class PostFormat(StrEnum):
    POST = "post"
    REEL = "reel"
    CAROUSEL = "carousel"
    STORY = "story"
    VIDEO = "video"


class ErrorCode(StrEnum):
    """Why a publish attempt did not succeed (DESIGN.md section 4)."""

    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - a status name, not a secret
    RATE_LIMITED = "rate_limited"
    CONTENT_REJECTED = "content_rejected"
    FORMAT_UNSUPPORTED = "format_unsupported"
    ACCOUNT_INACTIVE = "account_inactive"
    NETWORK_ERROR = "network_error"
    PUBLISH_UNCONFIRMED = "publish_unconfirmed"
    MISSED = "missed"
    UNKNOWN_ERROR = "unknown_error"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - a status name, not a secret
    REVOKED = "revoked"
    PENDING_REVIEW = "pending_review"


class Event(BaseModel):
    """Common envelope. Frozen, and tolerant of fields it does not know (newer producers)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID = Field(default_factory=uuid4, description="Unique per event; consumers deduplicate on it")
    event_type: str = Field(description="The event's name, e.g. PostPublished; also a Kafka header")
    schema_version: int = Field(default=1, ge=1, description="Version of this event's schema")
    occurred_at: AwareDatetime = Field(default_factory=utc_now, description="When it happened (UTC)")
    producer: str = Field(min_length=1, description="Name of the service that emitted it")
    workspace_id: str = Field(min_length=1, description="Tenant")
    correlation_id: str = Field(min_length=1, description="The asset id the chain started from")

    @classmethod
    def type_name(cls) -> str:
        default = cls.model_fields["event_type"].default
        assert isinstance(default, str), f"{cls.__name__} must default event_type"
        return default
