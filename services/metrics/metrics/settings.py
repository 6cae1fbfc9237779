"""Settings of the metrics service (env prefix METRICS_, or SOCIALPUB_ for all services)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from shared.credentials import CredentialsSettings
from shared.settings import HttpSettings, ServiceSettings


class PlatformEndpoint(BaseModel):
    """Where one platform's API lives (the emulator in local runs) and the app's OAuth client."""

    base_url: str
    token_url: str | None = Field(default=None, description="OAuth token endpoint when not under base_url")
    client_id: str | None = None
    client_secret: SecretStr | None = None


def _default_platforms() -> dict[str, PlatformEndpoint]:
    return {
        "instagram": PlatformEndpoint(base_url="https://graph.facebook.com/v21.0"),
        "facebook": PlatformEndpoint(base_url="https://graph.facebook.com/v21.0"),
        "threads": PlatformEndpoint(base_url="https://graph.threads.net/v1.0"),
        "x": PlatformEndpoint(base_url="https://api.x.com"),
        "tiktok": PlatformEndpoint(base_url="https://open.tiktokapis.com"),
        "youtube": PlatformEndpoint(
            base_url="https://www.googleapis.com",
            token_url="https://oauth2.googleapis.com/token",  # noqa: S106 - a URL, not a secret
        ),
        "linkedin": PlatformEndpoint(
            base_url="https://api.linkedin.com",
            token_url="https://www.linkedin.com/oauth/v2/accessToken",  # noqa: S106 - a URL, not a secret
        ),
        "pinterest": PlatformEndpoint(base_url="https://api.pinterest.com"),
    }


class PullSettings(BaseModel):
    """When insights are pulled for a published post (DESIGN.md section 8)."""

    first_after_seconds: float = Field(default=60, ge=0, description="The first pull, this long after publishing")
    day_after_hours: float = Field(default=24, gt=0, description="The second pull")
    nightly_hour_utc: int = Field(default=3, ge=0, le=23, description="Nightly pulls start at this hour (UTC)")
    nightly_spread_minutes: float = Field(
        default=60, ge=0, description="Nightly pulls spread over this window after the hour, per post"
    )
    nightly_min_gap_hours: float = Field(
        default=6, ge=0, description="A nightly pull closer than this to the 24 h pull is skipped"
    )
    young_days: float = Field(default=30, gt=0, description="Nightly pulls continue while the post is this young")
    catch_up_after_minutes: float = Field(
        default=15, ge=0, description="A pull this late (downtime) is recorded with reason catch_up"
    )
    retry_base_seconds: float = Field(default=60, gt=0, description="First backoff after a failed pull")
    retry_max_seconds: float = Field(default=3600, gt=0, description="Longest backoff after a failed pull")
    max_tries: int = Field(default=5, ge=1, description="Failed tries of one pull before moving to the next")
    rate_limit_backoff_seconds: float = Field(
        default=900, gt=0, description="Wait after a 429 when the platform does not say how long"
    )
    yield_backlog: int = Field(
        default=2000,
        ge=0,
        description="Planned pulls wait while the publishers have more unfinished due posts than this (0: never)",
    )
    yield_at_most_seconds: float = Field(
        default=600, gt=0, description="Longest wait for the publishers' backlog; then pulls run anyway"
    )
    account_hour_utc: int = Field(default=2, ge=0, le=23, description="Daily account snapshots start at this hour")
    account_spread_minutes: float = Field(
        default=60, ge=0, description="Daily account snapshots spread over this window after the hour, per account"
    )


class MetricsSettings(ServiceSettings):
    SERVICE: ClassVar[str] = "metrics"

    model_config = SettingsConfigDict(env_prefix="METRICS_")

    http: HttpSettings = HttpSettings(port=8004)
    credentials: CredentialsSettings = CredentialsSettings()
    platforms: dict[str, PlatformEndpoint] = Field(default_factory=_default_platforms)
    pulls: PullSettings = PullSettings()

    @field_validator("platforms", mode="after")
    @classmethod
    def _over_the_defaults(cls, given: dict[str, PlatformEndpoint]) -> dict[str, PlatformEndpoint]:
        # Environment values (SOCIALPUB_PLATFORMS__X__BASE_URL, as deployments set them) replace a
        # dict whole; keep every platform and every field that was not given.
        merged = _default_platforms()
        for name, endpoint in given.items():
            default = merged.get(name)
            merged[name] = default.model_copy(update=endpoint.model_dump(exclude_unset=True)) if default else endpoint
        return merged

    approval_url: str = Field(
        default="http://127.0.0.1:8001", description="The approval service, which verifies API keys"
    )
    auth_cache_seconds: float = Field(default=30, ge=0, description="How long a key's verdict is reused")
    refresh_role: str = Field(default="editor", description="Least role that may ask for a refresh now")
    unreported_role: str = Field(
        default="editor",
        description="The role assumed when the approval service does not report the key's role",
    )
    refresh_min_interval_seconds: float = Field(
        default=300, ge=0, description="A post's refresh now is refused when the last one was this recent"
    )
    stale_after_hours: float = Field(default=26, gt=0, description="Older metrics are reported as stale")
    max_concurrent_pulls: int = Field(default=16, ge=1, description="Insight calls in flight at once")
    request_timeout_seconds: float = Field(default=20, gt=0, description="Timeout of one insight call")
    linkedin_version: str = Field(default="202511", description="LinkedIn-Version header (YYYYMM)")
    batch_size: int = Field(default=500, ge=1, description="Most PostPublished events taken per batch")
    session_timeout_ms: int = Field(default=10_000, ge=3000)
