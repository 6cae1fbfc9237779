"""Every event type through the real broker, and the dead-letter path of our consumers."""

from __future__ import annotations

import json

import pytest

from shared.events import ALL_EVENTS, Event, PostPublished, decode
from shared.kafka import Delivery, EventBus, ensure_topics
from shared.settings import KafkaSettings
from shared.topics import POSTS_PUBLISHED, dead_letter
from tests.samples import all_samples, sample
from tests.support import eventually, read_all, running_bus

pytestmark = pytest.mark.integration


def prefixed(settings: KafkaSettings, unique: str) -> KafkaSettings:
    return settings.model_copy(update={"topic_prefix": f"t{unique}."})


async def test_each_event_type_is_produced_and_consumed_with_its_headers(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    settings = prefixed(kafka_settings, unique)
    await ensure_topics(settings, [POSTS_PUBLISHED])
    samples = all_samples()
    async with running_bus(settings) as bus:
        await bus.publish_many([(POSTS_PUBLISHED, event, "k") for event in samples])

    records = await read_all(settings, bus.topic(POSTS_PUBLISHED), len(samples))
    assert len(records) == len(samples)
    by_id = {str(e.event_id): e for e in samples}
    for record in records:
        assert record.key == b"k"
        record_headers = {k: v.decode() for k, v in record.headers}
        sent = by_id[record_headers["event_id"]]
        assert record_headers["event_type"] == sent.event_type
        assert record_headers["schema_version"] == "1"
        assert decode(record.value, ALL_EVENTS) == sent


async def test_malformed_messages_go_to_the_dlq_and_the_consumer_keeps_going(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    settings = prefixed(kafka_settings, unique)
    await ensure_topics(settings, [POSTS_PUBLISHED, dead_letter(POSTS_PUBLISHED)])
    received: list[Event] = []

    async def handle(event: PostPublished) -> None:
        received.append(event)

    def subscribe(bus: EventBus) -> None:
        bus.subscribe(POSTS_PUBLISHED, group_id=f"g-{unique}", events=[PostPublished], handler=handle)

    first = sample(PostPublished, remote_id="first")
    future = json.loads(first.model_dump_json())
    future.update(
        event_id="6f0c7c34-4a9e-4f7f-9b8e-2f1d9a2b6c01", schema_version=2, remote_id="future", reactions={"love": 1}
    )
    last = sample(PostPublished, remote_id="last")
    async with running_bus(settings, subscribe) as bus:
        topic = bus.topic(POSTS_PUBLISHED)
        await bus.publish(POSTS_PUBLISHED, first, key="p")
        await bus.broker.publish(b"{not json", topic=topic, key=b"p")
        await bus.broker.publish(b'{"event_type": "PostPublished", "post_id": ""}', topic=topic, key=b"p")
        await bus.broker.publish(
            json.dumps(future).encode(),
            topic=topic,
            key=b"p",
            headers={"event_type": "PostPublished", "schema_version": "2"},
        )
        await bus.publish(POSTS_PUBLISHED, last, key="p")
        await eventually(lambda: len(received) == 3, what="three readable events")

    assert [e.remote_id for e in received] == ["first", "future", "last"]  # type: ignore[attr-defined]
    assert received[1].schema_version == 2

    dead = await read_all(settings, dead_letter(topic), 2)
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
    settings = prefixed(kafka_settings, unique)
    await ensure_topics(settings, [POSTS_PUBLISHED, dead_letter(POSTS_PUBLISHED)])
    attempts: list[str] = []

    async def flaky(event: PostPublished) -> None:
        attempts.append(event.remote_id)
        if len(attempts) == 1:
            raise RuntimeError("the database blinked")

    def subscribe(bus: EventBus) -> None:
        bus.subscribe(POSTS_PUBLISHED, group_id=f"g-{unique}", events=[PostPublished], handler=flaky)

    async with running_bus(settings, subscribe) as bus:
        await bus.publish(POSTS_PUBLISHED, sample(PostPublished, remote_id="r1"), key="p")
        await eventually(lambda: len(attempts) >= 2, what="redelivery after a handler error")
    assert attempts[:2] == ["r1", "r1"]


async def test_batch_consumers_dead_letter_per_message_and_see_partitions(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    settings = prefixed(kafka_settings, unique)
    await ensure_topics(settings, [POSTS_PUBLISHED, dead_letter(POSTS_PUBLISHED)])
    got: list[Delivery[PostPublished]] = []

    async def handle(batch: list[Delivery[PostPublished]]) -> None:
        got.extend(batch)

    def subscribe(bus: EventBus) -> None:
        bus.subscribe_batch([POSTS_PUBLISHED], group_id=f"g-{unique}", events=[PostPublished], handler=handle)

    async with running_bus(settings, subscribe) as bus:
        await bus.publish_many([(POSTS_PUBLISHED, sample(PostPublished, post_id=f"p{i}"), f"p{i}") for i in range(6)])
        await bus.broker.publish(b"garbage", topic=bus.topic(POSTS_PUBLISHED), key=b"p0")
        await eventually(lambda: len(got) == 6, what="six events in batches")
        dead = await read_all(settings, f"t{unique}.{dead_letter(POSTS_PUBLISHED)}", 1)
    assert sorted(d.event.post_id for d in got) == [f"p{i}" for i in range(6)]
    assert {d.topic for d in got} == {POSTS_PUBLISHED}
    assert {d.partition for d in got} <= {0, 1}
    assert [r.value for r in dead] == [b"garbage"]
