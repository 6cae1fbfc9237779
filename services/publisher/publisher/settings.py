"""Settings of the publisher service (env prefix PUBLISHER_, or SOCIALPUB_ for all services).

Per-platform values are overrides: anything left unset takes the platform module's default
(`publisher.platforms.DEFAULTS`), so `PUBLISHER_PLATFORMS__X__PUBLISH_LIMIT=17` changes one number.
"""

from __future__ import annotations

import os
import socket
from typing import ClassVar

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.credentials import CredentialsSettings
from shared.events import Platform
from shared.settings import HttpSettings, KafkaSettings, ServiceSettings


def _replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class PlatformSettings(BaseModel):
    """Overrides for one platform; None means the platform module's default."""

    base_url: str | None = Field(default=None, description="The API's base URL (the emulator's in local runs)")
    token_url: str | None = Field(default=None, description="OAuth token endpoint, when not under base_url")
    client_id: str | None = None
    client_secret: SecretStr | None = None
    publish_limit: int | None = Field(default=None, ge=0, description="Posts per account per window")
    publish_window_seconds: float | None = Field(default=None, gt=0)
    app_limit: int | None = Field(default=None, ge=0, description="Posts per app (all accounts) per window")
    app_window_seconds: float | None = Field(default=None, gt=0)
    refresh_margin_seconds: float | None = Field(
        default=None, ge=0, description="Refresh tokens this long before expiry"
    )


class PlatformsSettings(BaseModel):
    instagram: PlatformSettings = PlatformSettings()
    facebook: PlatformSettings = PlatformSettings()
    x: PlatformSettings = PlatformSettings()
    tiktok: PlatformSettings = PlatformSettings()
    youtube: PlatformSettings = PlatformSettings()
    linkedin: PlatformSettings = PlatformSettings()
    threads: PlatformSettings = PlatformSettings()
    pinterest: PlatformSettings = PlatformSettings()
    telegram: PlatformSettings = PlatformSettings()

    def of(self, platform: Platform) -> PlatformSettings:
        value: PlatformSettings = getattr(self, platform.value)
        return value


class PublisherSettings(ServiceSettings):
    SERVICE: ClassVar[str] = "publisher"

    model_config = SettingsConfigDict(env_prefix="PUBLISHER_")

    http: HttpSettings = HttpSettings(port=8003)
    # Outcome events are not on the way to publication (the lateness a person sees ends when the
    # platform has the post), so they may wait 20 ms to share a produce request: at 200 posts/s
    # a few milliseconds of linger sent almost every outcome alone.
    kafka: KafkaSettings = KafkaSettings(linger_ms=20)
    credentials: CredentialsSettings = CredentialsSettings()
    platform: str = Field(
        default="all", description="The platform this instance publishes to; a comma list or `all` for local runs"
    )
    platforms: PlatformsSettings = PlatformsSettings()
    emulator_url: str | None = Field(
        default=None, description="Point every platform at the emulator: base URL becomes <emulator_url>/<platform>"
    )
    replica_id: str = Field(default_factory=_replica_id, description="Unique per running process: the lease owner")
    max_in_flight: int = Field(default=512, ge=1, description="Accounts being published for at once")
    max_pending: int = Field(default=5000, ge=1, description="Fetched posts not yet finished before fetching pauses")
    fetch_max_records: int = Field(default=1000, ge=1)
    commit_interval_seconds: float = Field(default=1.0, gt=0)
    session_timeout_ms: int = Field(default=10_000, ge=3000)
    lease_seconds: float = Field(default=120, gt=0, description="How long a claimed attempt is ours without renewal")
    request_timeout_seconds: float = Field(default=30, gt=0, description="Per platform call")
    attempt_timeout_seconds: float = Field(
        default=900, gt=0, description="An attempt still running after this long is abandoned and reconciled"
    )
    max_connections: int = Field(default=1000, ge=1, description="HTTP connections per platform")
    max_attempts: int = Field(default=5, ge=1, description="Failed attempts before a post fails for good")
    retry_base_seconds: float = Field(default=60, gt=0)
    retry_cap_seconds: float = Field(default=1800, gt=0)
    retry_jitter: float = Field(default=0.2, ge=0, le=1, description="Fraction of the backoff added at random")
    processing_poll_seconds: float = Field(default=2.0, gt=0, description="Between container/upload status checks")
    processing_timeout_seconds: float = Field(default=300, gt=0, description="Give up waiting for processing")
    rate_flush_seconds: float = Field(default=1.0, gt=0, description="How often rate windows are persisted")
    credentials_cache_seconds: float = Field(default=60, ge=0)
    live_quota_every_seconds: float = Field(
        default=600, gt=0, description="Re-read a platform's live quota for an account at most this often"
    )

    @model_validator(mode="after")
    def _attempts_outlast_processing(self) -> PublisherSettings:
        if self.attempt_timeout_seconds <= self.processing_timeout_seconds:
            raise ValueError(
                "PUBLISHER_ATTEMPT_TIMEOUT_SECONDS must be longer than PUBLISHER_PROCESSING_TIMEOUT_SECONDS, "
                "or every slow upload would be abandoned while it is still processing"
            )
        return self

    def platform_list(self) -> list[Platform]:
        if self.platform.strip() == "all":
            return list(Platform)
        return [Platform(p.strip()) for p in self.platform.split(",") if p.strip()]
