"""Typed settings building blocks. Services subclass ServiceSettings and build it at call time.

Every field can be set per service (`SCHEDULER_KAFKA__BOOTSTRAP_SERVERS`) or once for all
services (`SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS`); the per-service value wins.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

COMMON_ENV_PREFIX = "SOCIALPUB_"


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "localhost:9092"
    # One count for every topic keeps post-keyed topics co-partitioned (DESIGN.md section 6).
    partitions: int = Field(default=12, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    create_topics: bool = Field(default=True, description="Create missing topics at start-up")
    request_timeout_ms: int = 40_000
    linger_ms: int = Field(default=2, ge=0, description="How long the producer waits to fill a batch")
    # A fetch answers once it holds fetch_min_bytes or after fetch_max_wait_ms. Answering at the
    # first record (Kafka's default of 1 byte) made every busy consumer fetch a few records at a
    # time: the broker used 19.5 % of a core at 200 posts/s, 12.9 % with these defaults. The wait
    # adds at most fetch_max_wait_ms to a hop while traffic is light.
    fetch_min_bytes: int = Field(default=32 * 1024, ge=1, description="Bytes a fetch waits for")
    fetch_max_wait_ms: int = Field(default=100, ge=0, description="How long a fetch waits for fetch_min_bytes")
    topic_prefix: str = Field(
        default="", description="Prepended to every topic and consumer group name; for tests and shared dev clusters"
    )


class MongoSettings(BaseModel):
    url: SecretStr = SecretStr("mongodb://localhost:27017/")
    database: str = ""
    server_selection_timeout_ms: int = 10_000
    # A read that never answers must fail rather than hang the caller forever (pymongo's default):
    # the publisher's fault suite had attempts stuck for minutes with their leases still renewed.
    socket_timeout_ms: int = Field(default=60_000, gt=0)


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)


class LogSettings(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_output: bool = Field(default=True, description="JSON lines; false gives readable console output")


class ServiceSettings(BaseSettings):
    """Base for each service's settings; subclasses set SERVICE and their own env_prefix."""

    SERVICE: ClassVar[str] = ""

    # A nested variable (PUBLISHER_HTTP__HOST) changes that one field of a service's own default
    # (the publisher's port 8003), rather than rebuilding the whole section from the generic one.
    model_config = SettingsConfigDict(
        env_nested_delimiter="__", extra="ignore", nested_model_default_partial_update=True
    )

    kafka: KafkaSettings = KafkaSettings()
    mongo: MongoSettings = MongoSettings()
    http: HttpSettings = HttpSettings()
    log: LogSettings = LogSettings()

    @property
    def database(self) -> str:
        return self.mongo.database or f"socialpub_{self.SERVICE}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        common = EnvSettingsSource(settings_cls, env_prefix=COMMON_ENV_PREFIX, env_nested_delimiter="__")
        return init_settings, env_settings, common, dotenv_settings, file_secret_settings
