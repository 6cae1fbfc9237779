"""Settings of the scheduler service (env prefix SCHEDULER_, or SOCIALPUB_ for all services)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import HttpSettings, ServiceSettings


class SchedulerSettings(ServiceSettings):
    SERVICE: ClassVar[str] = "scheduler"

    model_config = SettingsConfigDict(env_prefix="SCHEDULER_")

    http: HttpSettings = HttpSettings(port=8002)
