"""Settings of the scheduler service (env prefix SCHEDULER_, or SOCIALPUB_ for all services)."""

from __future__ import annotations

import os
import socket
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import HttpSettings, ServiceSettings


def _replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class SchedulerSettings(ServiceSettings):
    SERVICE: ClassVar[str] = "scheduler"

    model_config = SettingsConfigDict(env_prefix="SCHEDULER_")

    http: HttpSettings = HttpSettings(port=8002)
    misfire_window_hours: float = Field(
        default=48, gt=0, description="Overdue posts within this window publish late; beyond it they fail as missed"
    )
    replica_id: str = Field(
        default_factory=_replica_id, description="Unique per running replica: names its account-status consumer group"
    )
    batch_size: int = Field(default=500, ge=1, description="Most records the owner consumer takes per batch")
    dispatch_chunk: int = Field(default=2000, ge=1, description="Most posts handed over per dispatch step")
    session_timeout_ms: int = Field(
        default=10_000, ge=3000, description="How soon the group notices a dead replica and moves its partitions"
    )
    record_within_ms: float = Field(
        default=250, ge=0, description="Handed-over posts are recorded together, the first at most this long after"
    )
    compact_interval_seconds: float = Field(default=30, gt=0, description="How often dispatch records are folded")
    compact_after_seconds: float = Field(
        default=180, ge=0, description="Dispatch records are folded once they are this old (after a burst has gone out)"
    )
