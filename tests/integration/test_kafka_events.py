"""Every event type through the real broker, and the dead-letter path of our consumers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from faststream.kafka import KafkaBroker

from shared.events import ALL_EVENTS, Event, PostPublished, decode
from shared.kafka import Delivery, EventBus, build_broker, ensure_topics
from shared.metrics import build_metrics
from shared.settings import KafkaSettings
from shared.topics import POSTS_PUBLISHED, dead_letter
from tests.samples import all_samples, sample
from tests.support import eventually

pytestmark = pytest.mark.integration


async def read_all(settings: KafkaSettings, topic: str, count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        records: list[Any] = []
        for _ in range(100):
            batch = await consumer.getmany(timeout_ms=300)
            records.extend(r for rs in batch.values() for r in rs)
            if len(records) >= count:
                break
        return records
    finally:
        await consumer.stop()


async def test_each_event_type_is_produced_and_consumed_with_its_headers(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    topic = f"test.events.{unique}"
    await ensure_topics(kafka_settings, [topic])
    broker = build_broker(kafka_settings, service="tests", metrics=build_metrics())
    await broker.start()
    try:
        events = EventBus(broker, kafka_settings, build_metrics())
        samples = all_samples()
        for event in samples:
            await events.publish(topic, event, key="k")
    finally:
        await broker.stop()

    records = await read_all(kafka_settings, topic, len(samples))
    assert len(records) == len(samples)
    for record, sent in zip(records, samples, strict=True):
        assert record.key == b"k"
        record_headers = {k: v.decode() for k, v in record.headers}
        assert record_headers["event_type"] == sent.event_type
        assert record_headers["schema_version"] == "1"
        assert record_headers["event_id"] == str(sent.event_id)
        assert decode(record.value, ALL_EVENTS) == sent


async def started_consumer(
    settings: KafkaSettings, topic: str, group: str, received: list[Event]
) -> tuple[KafkaBroker, EventBus]:
    metrics = build_metrics()
    broker = build_broker(settings, service="tests", metrics=metrics)
    bus = EventBus(broker, settings, metrics)

    async def handle(event: PostPublished) -> None:
        received.append(event)

    bus.subscribe(topic, group_id=group, events=[PostPublished], handler=handle)
    await broker.start()
    return broker, bus


async def test_malformed_messages_go_to_the_dlq_and_the_consumer_keeps_going(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    topic = f"test.dlq.{unique}"
    await ensure_topics(kafka_settings, [topic, dead_letter(topic)])
    received: list[Event] = []
    broker, events = await started_consumer(kafka_settings, topic, f"g-{unique}", received)
    try:
        first = sample(PostPublished, remote_id="first")
        future = json.loads(first.model_dump_json())
        future.update(
            event_id="6f0c7c34-4a9e-4f7f-9b8e-2f1d9a2b6c01", schema_version=2, remote_id="future", reactions={"love": 1}
        )
        last = sample(PostPublished, remote_id="last")

        await events.publish(topic, first, key="p")
        await broker.publish(b"{not json", topic=topic, key=b"p")
        await broker.publish(b'{"event_type": "PostPublished", "post_id": ""}', topic=topic, key=b"p")
        await broker.publish(
            json.dumps(future).encode(),
            topic=topic,
            key=b"p",
            headers={"event_type": "PostPublished", "schema_version": "2"},
        )
        await events.publish(topic, last, key="p")

        await eventually(lambda: len(received) == 3, what="three readable events")
    finally:
        await broker.stop()

    assert [e.remote_id for e in received] == ["first", "future", "last"]  # type: ignore[attr-defined]
    assert received[1].schema_version == 2

    dead = await read_all(kafka_settings, dead_letter(topic), 2)
    assert [r.value for r in dead] == [b"{not json", b'{"event_type": "PostPublished", "post_id": ""}']
    first_headers = {k: v.decode() for k, v in dead[0].headers}
    assert first_headers["dlq.reason"].startswith("not JSON")
    assert first_headers["dlq.source_topic"] == topic
    assert first_headers["dlq.source_offset"] == "1"
    assert first_headers["dlq.consumer_group"] == f"g-{unique}"
    second_headers = {k: v.decode() for k, v in dead[1].headers}
    assert "invalid PostPublished" in second_headers["dlq.reason"]
    assert second_headers["dlq.source_offset"] == "2"


async def test_a_failing_handler_gets_the_message_again(kafka_settings: KafkaSettings, unique: str) -> None:
    topic = f"test.redeliver.{unique}"
    await ensure_topics(kafka_settings, [topic, dead_letter(topic)])
    metrics = build_metrics()
    broker = build_broker(kafka_settings, service="tests", metrics=metrics)
    attempts: list[str] = []

    async def flaky(event: PostPublished) -> None:
        attempts.append(event.remote_id)
        if len(attempts) == 1:
            raise RuntimeError("the database blinked")

    bus = EventBus(broker, kafka_settings, metrics)
    bus.subscribe(topic, group_id=f"g-{unique}", events=[PostPublished], handler=flaky)
    await broker.start()
    try:
        await bus.publish(topic, sample(PostPublished, remote_id="r1"), key="p")
        await eventually(lambda: len(attempts) >= 2, what="redelivery after a handler error")
    finally:
        await broker.stop()
    assert attempts[:2] == ["r1", "r1"]


async def test_batch_consumers_dead_letter_per_message_and_see_partitions(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    settings = kafka_settings.model_copy(update={"topic_prefix": f"t{unique}."})
    await ensure_topics(settings, [POSTS_PUBLISHED, dead_letter(POSTS_PUBLISHED)])
    metrics = build_metrics()
    broker = build_broker(settings, service="tests", metrics=metrics)
    bus = EventBus(broker, settings, metrics)
    got: list[Delivery[PostPublished]] = []

    async def handle(batch: list[Delivery[PostPublished]]) -> None:
        got.extend(batch)

    bus.subscribe_batch([POSTS_PUBLISHED], group_id=f"g-{unique}", events=[PostPublished], handler=handle)
    await broker.start()
    try:
        for i in range(6):
            await bus.publish(POSTS_PUBLISHED, sample(PostPublished, post_id=f"p{i}"), key=f"p{i}")
        await broker.publish(b"garbage", topic=bus.topic(POSTS_PUBLISHED), key=b"p0")
        await eventually(lambda: len(got) == 6, what="six events in batches")
    finally:
        await broker.stop()
    assert sorted(d.event.post_id for d in got) == [f"p{i}" for i in range(6)]
    assert {d.topic for d in got} == {POSTS_PUBLISHED}
    assert {d.partition for d in got} <= {0, 1}
    dead = await read_all(kafka_settings, f"t{unique}.{dead_letter(POSTS_PUBLISHED)}", 1)
    assert [r.value for r in dead] == [b"garbage"]
