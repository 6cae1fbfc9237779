"""Settings of the metrics service (env prefix METRICS_, or SOCIALPUB_ for all services)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import HttpSettings, ServiceSettings


class MetricsSettings(ServiceSettings):
    SERVICE: ClassVar[str] = "metrics"

    model_config = SettingsConfigDict(env_prefix="METRICS_")

    http: HttpSettings = HttpSettings(port=8004)
