"""Settings are built at call time from the environment; a per-service value beats the common one."""

from __future__ import annotations

import pytest

from metrics.settings import MetricsSettings
from publisher.settings import PublisherSettings
from scheduler.settings import SchedulerSettings
from shared.events import PostPublished
from shared.kafka import EventBus, build_broker
from shared.metrics import build_metrics


def test_per_service_env_beats_common_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS", "common:9092")
    monkeypatch.setenv("SOCIALPUB_KAFKA__PARTITIONS", "6")
    monkeypatch.setenv("SCHEDULER_KAFKA__PARTITIONS", "24")
    scheduler = SchedulerSettings()
    assert scheduler.kafka.bootstrap_servers == "common:9092"
    assert scheduler.kafka.partitions == 24
    assert PublisherSettings().kafka.partitions == 6


def test_a_nested_variable_changes_one_field_and_keeps_the_services_own_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUBLISHER_HTTP__HOST", "0.0.0.0")
    monkeypatch.setenv("SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS", "common:9092")
    publisher = PublisherSettings()
    assert (publisher.http.host, publisher.http.port) == ("0.0.0.0", 8003)
    assert (publisher.kafka.bootstrap_servers, publisher.kafka.linger_ms) == ("common:9092", 20)
    assert SchedulerSettings().kafka.linger_ms == 2


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


def test_every_bus_subscriber_fetches_with_the_configured_batching(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALPUB_KAFKA__FETCH_MIN_BYTES", "4096")
    monkeypatch.setenv("SOCIALPUB_KAFKA__FETCH_MAX_WAIT_MS", "250")
    kafka = SchedulerSettings().kafka
    metrics = build_metrics()
    bus = EventBus(build_broker(kafka, service="tests", metrics=metrics), kafka, metrics, client_id="tests")

    async def handler(_: object) -> None: ...

    bus.subscribe("posts.published.v1", group_id="one", events=[PostPublished], handler=handler)
    bus.subscribe_batch(["posts.published.v1"], group_id="batch", events=[PostPublished], handler=handler)
    bus.subscribe("posts.failed.v1", group_id="own", events=[PostPublished], handler=handler, fetch_max_wait_ms=5)

    # The arguments each subscriber's aiokafka consumer is built with.
    built = [s._connection_args for s in bus.broker.subscribers]  # type: ignore[attr-defined]  # FastStream keeps them here
    assert sorted((c["fetch_min_bytes"], c["fetch_max_wait_ms"]) for c in built) == [
        (4096, 5),
        (4096, 250),
        (4096, 250),
    ]
