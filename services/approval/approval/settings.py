"""Settings of the approval service (env prefix APPROVAL_, or SOCIALPUB_ for all services)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import HttpSettings, ServiceSettings


class ApprovalSettings(ServiceSettings):
    SERVICE: ClassVar[str] = "approval"

    model_config = SettingsConfigDict(env_prefix="APPROVAL_")

    http: HttpSettings = HttpSettings(port=8001)
