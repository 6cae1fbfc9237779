"""Settings of the publisher service (env prefix PUBLISHER_, or SOCIALPUB_ for all services)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import HttpSettings, ServiceSettings


class PublisherSettings(ServiceSettings):
    SERVICE: ClassVar[str] = "publisher"

    model_config = SettingsConfigDict(env_prefix="PUBLISHER_")

    http: HttpSettings = HttpSettings(port=8003)
