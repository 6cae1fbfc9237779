"""Settings are built at call time from the environment; a per-service value beats the common one."""

from __future__ import annotations

import pytest

from metrics.settings import MetricsSettings
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


def test_a_platform_url_from_the_environment_keeps_the_other_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # What compose and Kubernetes set for every service at once.
    monkeypatch.setenv("SOCIALPUB_PLATFORMS__YOUTUBE__BASE_URL", "http://emulator:8090/youtube")
    metrics = MetricsSettings()
    assert metrics.platforms["youtube"].base_url == "http://emulator:8090/youtube"
    assert metrics.platforms["youtube"].token_url == "https://oauth2.googleapis.com/token"
    assert metrics.platforms["instagram"].base_url == "https://graph.facebook.com/v21.0"
    assert PublisherSettings().platforms.youtube.base_url == "http://emulator:8090/youtube"
