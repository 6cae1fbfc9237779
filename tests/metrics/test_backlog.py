"""The publishers' backlog as the metrics service reads it, against the real Kafka broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from metrics.adapters.backlog import KafkaBacklog
from shared import topics
from shared.events import Platform
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings


@pytest.fixture
async def settings(kafka_settings: KafkaSettings, unique: str) -> KafkaSettings:
    prefixed = kafka_settings.model_copy(update={"topic_prefix": f"backlog{unique}."})
    await ensure_topics(prefixed, [topics.posts_due(p) for p in (Platform.X, Platform.TIKTOK)])
    return prefixed


@pytest.fixture
async def backlog(settings: KafkaSettings) -> AsyncIterator[KafkaBacklog]:
    reader = KafkaBacklog(settings)
    yield reader
    await reader.close()


async def due(settings: KafkaSettings, platform: Platform, partition: int, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for n in range(count):
            await producer.send_and_wait(
                settings.topic_prefix + topics.posts_due(platform), f"post {n}".encode(), partition=partition
            )
    finally:
        await producer.stop()


async def commit(settings: KafkaSettings, platform: Platform, partition: int, offset: int) -> None:
    """What a publisher does: commit its group's position on one partition."""
    tp = TopicPartition(settings.topic_prefix + topics.posts_due(platform), partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.topic_prefix + topics.publisher_group(platform),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(offset, "")})
    finally:
        await consumer.stop()


async def test_counts_due_posts_past_each_publisher_groups_committed_position(
    settings: KafkaSettings, backlog: KafkaBacklog
) -> None:
    await due(settings, Platform.X, 0, 5)
    await due(settings, Platform.X, 1, 2)
    await due(settings, Platform.TIKTOK, 0, 4)
    # No publisher has committed anything yet: nothing to wait for.
    assert await backlog.unfinished() == 0
    await commit(settings, Platform.X, 0, 1)
    await commit(settings, Platform.X, 1, 2)
    await commit(settings, Platform.TIKTOK, 0, 0)
    assert await backlog.unfinished() == (5 - 1) + (2 - 2) + (4 - 0)
    await commit(settings, Platform.X, 0, 5)
    await commit(settings, Platform.TIKTOK, 0, 4)
    assert await backlog.unfinished() == 0


async def test_an_unreachable_broker_gives_an_unknown_backlog() -> None:
    reader = KafkaBacklog(KafkaSettings(bootstrap_servers="127.0.0.1:9", request_timeout_ms=2000))
    try:
        assert await reader.unfinished() is None
        assert await reader.unfinished() is None  # and again, without raising
    finally:
        await reader.close()


def test_is_made_before_any_event_loop_runs() -> None:
    """The service's composition root makes it before uvicorn starts the loop; aiokafka's
    clients refuse to be made without one, so they are made on first use."""
    KafkaBacklog(KafkaSettings())
