"""Settings of the approval service (env prefix APPROVAL_, or SOCIALPUB_ for all services)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from approval.adapters.media_probe import MediaProbeSettings
from shared.credentials import CredentialsSettings
from shared.settings import HttpSettings, ServiceSettings


class ApprovalSettings(ServiceSettings):
    SERVICE: ClassVar[str] = "approval"

    model_config = SettingsConfigDict(env_prefix="APPROVAL_")

    http: HttpSettings = HttpSettings(port=8001)
    credentials: CredentialsSettings = CredentialsSettings()
    bootstrap_token: SecretStr | None = Field(
        default=None,
        description="Allows POST /v1/workspaces (creating a workspace and its first admin key) to whoever "
        "presents it in X-Bootstrap-Token. Unset: workspace creation over HTTP is off.",
    )
    purge_interval_seconds: float = Field(default=3600, gt=0, description="How often soft-deleted assets are purged")
    outbox_relay_interval_seconds: float = Field(
        default=30, gt=0, description="How often unpublished asset events are sent again"
    )
    token_expiry_horizon_days: float = Field(
        default=7, gt=0, description="An account whose token dies within this many days counts as expiring"
    )
    token_expiry_check_seconds: float = Field(
        default=300, gt=0, description="How often the expiring-token gauge is recounted"
    )
    media_probe: MediaProbeSettings = MediaProbeSettings()
    slot_gap_horizon_hours: float = Field(
        default=48, gt=0, le=24 * 93, description="Default horizon of GET /v1/slots/gaps: empty slots due this soon"
    )
