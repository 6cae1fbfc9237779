"""Emulator configuration: defaults per platform that the control API can change at run time."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

PLATFORMS = ("instagram", "facebook", "x", "tiktok", "youtube", "linkedin", "threads", "pinterest", "telegram")

DAY = 86_400.0


class Limits(BaseModel):
    """Publishing quota (rolling window, counts posts created) and request limit (fixed window, counts calls)."""

    model_config = ConfigDict(extra="forbid")

    publish_limit: int | None = Field(default=None, ge=0)
    publish_window_s: float = Field(default=DAY, gt=0)
    request_limit: int | None = Field(default=None, ge=0)
    request_window_s: float = Field(default=900.0, gt=0)


class TokenPolicy(BaseModel):
    """How a platform issues tokens: lifetimes in seconds (None = never expires) and refresh rotation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    access_ttl_s: float | None
    refresh_ttl_s: float | None = None
    has_refresh_token: bool = True
    rotates_refresh_token: bool = False


# Realistic publishing quotas (PLATFORMS.md); None where the platform publishes no number.
REALISTIC_LIMITS: dict[str, Limits] = {
    "instagram": Limits(publish_limit=50),
    "threads": Limits(publish_limit=250),
    "x": Limits(publish_limit=100, request_limit=900, request_window_s=900),
    "youtube": Limits(publish_limit=100),
}

TOKEN_POLICIES: dict[str, TokenPolicy] = {
    "instagram": TokenPolicy(access_ttl_s=60 * DAY, has_refresh_token=False),
    "threads": TokenPolicy(access_ttl_s=60 * DAY, has_refresh_token=False),
    "facebook": TokenPolicy(access_ttl_s=None, has_refresh_token=False),
    "x": TokenPolicy(access_ttl_s=7200, refresh_ttl_s=180 * DAY, rotates_refresh_token=True),
    "tiktok": TokenPolicy(access_ttl_s=DAY, refresh_ttl_s=365 * DAY, rotates_refresh_token=True),
    "youtube": TokenPolicy(access_ttl_s=3599, refresh_ttl_s=None),
    "linkedin": TokenPolicy(access_ttl_s=60 * DAY, refresh_ttl_s=365 * DAY),
    "pinterest": TokenPolicy(access_ttl_s=30 * DAY, refresh_ttl_s=365 * DAY),
    "telegram": TokenPolicy(access_ttl_s=None, has_refresh_token=False),
}


class EmulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0)
    platform_latency_ms: dict[str, float] = Field(default_factory=dict)
    # Time before an IG/Threads container is FINISHED, a TikTok publish completes, an X video is processed.
    processing_delay_ms: float = Field(default=1000.0, ge=0)
    container_ttl_s: float = Field(default=DAY, gt=0)
    realistic_limits: bool = True
    seed: int | None = None

    def limits_for(self, platform: str) -> Limits:
        if self.realistic_limits and platform in REALISTIC_LIMITS:
            return REALISTIC_LIMITS[platform].model_copy()
        return Limits()
