"""Every dead letter is counted once in `socialpub_dead_letters_total{topic}`: the EventBus's own
subscribers and the publisher's due consumer (its own aiokafka loop) go through one method."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from publisher.adapters.mongo import MongoRateStore
from publisher.entrypoints.consumers import ConsumerOptions, DueConsumer
from publisher.handlers import Publisher
from publisher.instruments import build_publisher_metrics
from shared.events import Platform, PostDue, PostPublished
from shared.kafka import EventBus, ensure_topics
from shared.metrics import ServiceMetrics, build_metrics
from shared.settings import KafkaSettings
from shared.topics import POSTS_PUBLISHED, dead_letter, posts_due, publisher_group
from tests.samples import sample
from tests.support import eventually, read_all, running_bus

pytestmark = pytest.mark.integration

COUNTER = "socialpub_dead_letters_total"


def dead_letters(metrics: ServiceMetrics, topic: str) -> float:
    return metrics.registry.get_sample_value(COUNTER, {"topic": topic}) or 0.0


class _NoPublisher:
    """A malformed PostDue never reaches the publisher."""

    async def publish_due(self, job: PostDue) -> None:
        raise AssertionError(f"nothing should be published, got {job.post_id}")


class _NoRates:
    async def forget(self, accounts: set[tuple[str, str]]) -> None:
        return None


async def test_a_publisher_dead_letter_is_counted(kafka_settings: KafkaSettings, unique: str) -> None:
    settings = kafka_settings.model_copy(update={"topic_prefix": f"t{unique}."})
    due = posts_due(Platform.X)
    await ensure_topics(settings, [due, dead_letter(due)])
    metrics = build_metrics()
    async with running_bus(settings, metrics=metrics) as bus:
        consumer = DueConsumer(
            platform=Platform.X,
            publisher=cast(Publisher, _NoPublisher()),
            bus=bus,
            kafka=settings,
            rates=cast(MongoRateStore, _NoRates()),
            metrics=build_publisher_metrics(metrics.registry),
            slots=asyncio.Semaphore(1),
            options=ConsumerOptions(commit_interval=0.2, revoke_grace=1.0),
        )
        await consumer.start()
        try:
            await bus.broker.publish(b"{not json", topic=bus.topic(due), key=b"a1")
            await bus.broker.publish(b'{"event_type": "PostDue", "post_id": ""}', topic=bus.topic(due), key=b"a1")
            await eventually(lambda: dead_letters(metrics, due) >= 2, what="two publisher dead letters counted")
        finally:
            await consumer.stop()

    dead = await read_all(settings, bus.topic(dead_letter(due)), 2)
    assert [r.value for r in dead] == [b"{not json", b'{"event_type": "PostDue", "post_id": ""}']
    assert {dict(r.headers)["dlq.consumer_group"] for r in dead} == {bus.group(publisher_group(Platform.X)).encode()}
    assert dead_letters(metrics, due) == 2  # once each, labelled with the contract name
    assert dead_letters(metrics, bus.topic(due)) == 0


async def test_a_subscriber_dead_letter_is_counted_once(kafka_settings: KafkaSettings, unique: str) -> None:
    settings = kafka_settings.model_copy(update={"topic_prefix": f"t{unique}."})
    await ensure_topics(settings, [POSTS_PUBLISHED, dead_letter(POSTS_PUBLISHED)])
    received: list[PostPublished] = []

    async def handle(event: PostPublished) -> None:
        received.append(event)

    def subscribe(bus: EventBus) -> None:
        bus.subscribe(POSTS_PUBLISHED, group_id=f"g-{unique}", events=[PostPublished], handler=handle)

    metrics = build_metrics()
    async with running_bus(settings, subscribe, metrics) as bus:
        await bus.broker.publish(b"garbage", topic=bus.topic(POSTS_PUBLISHED), key=b"p")
        await bus.publish(POSTS_PUBLISHED, sample(PostPublished, remote_id="after"), key="p")
        await eventually(lambda: len(received) == 1, what="the event after the dead letter")

    assert dead_letters(metrics, POSTS_PUBLISHED) == 1
    consumed = metrics.registry.get_sample_value(
        "socialpub_events_consumed_total",
        {"topic": POSTS_PUBLISHED, "event_type": "unknown", "outcome": "dead_lettered"},
    )
    assert consumed == 1
