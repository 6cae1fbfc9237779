"""Settings are built at call time from the environment; a per-service value beats the common one."""

from __future__ import annotations

import pytest

from publisher.settings import PublisherSettings
from scheduler.settings import SchedulerSettings


def test_per_service_env_beats_common_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS", "common:9092")
    monkeypatch.setenv("SOCIALPUB_KAFKA__PARTITIONS", "6")
    monkeypatch.setenv("SCHEDULER_KAFKA__PARTITIONS", "24")
    scheduler = SchedulerSettings()
    assert scheduler.kafka.bootstrap_servers == "common:9092"
    assert scheduler.kafka.partitions == 24
    assert PublisherSettings().kafka.partitions == 6


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALPUB_MONGO__URL", "mongodb://admin:hunter2@db:27017/")
    settings = SchedulerSettings()
    assert "hunter2" not in repr(settings)
    assert settings.mongo.url.get_secret_value().endswith("@db:27017/")
    assert settings.database == "socialpub_scheduler"
