"""The pinned Kafka release works with aiokafka: produce, consume in a group across two
partitions, commit, and rebalance when a second consumer joins."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from tests.support import eventually

pytestmark = pytest.mark.integration


async def test_group_consumption_commit_and_rebalance(kafka_settings: KafkaSettings, unique: str) -> None:
    topic, group = f"test.compat.{unique}", f"compat-{unique}"
    await ensure_topics(kafka_settings, [topic])  # two partitions in the test settings
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, enable_idempotence=True, acks="all")
    await producer.start()

    async def produce(prefix: str, count: int) -> None:
        for i in range(count):
            await producer.send_and_wait(topic, f"{prefix}{i}".encode(), partition=i % 2)

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_settings.bootstrap_servers,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=500,
        )

    first, second = consumer(), consumer()
    try:
        await produce("a", 10)
        await first.start()
        seen: list[bytes] = []
        while len(seen) < 10:
            batch = await first.getmany(timeout_ms=500)
            seen.extend(r.value for rs in batch.values() for r in rs)
        assert sorted(seen) == sorted(f"a{i}".encode() for i in range(10))
        assert first.assignment() == {TopicPartition(topic, 0), TopicPartition(topic, 1)}
        await first.commit()
        assert await first.committed(TopicPartition(topic, 0)) == 5

        # A second member joins: the group rebalances to one partition each.
        await second.start()
        second_task = asyncio.create_task(second.getmany(timeout_ms=8000))
        await eventually(
            lambda: len(first.assignment()) == 1 and len(second.assignment()) == 1,
            within=30,
            what="rebalance to one partition each",
        )
        await second_task
        assert first.assignment() | second.assignment() == {TopicPartition(topic, 0), TopicPartition(topic, 1)}

        # Nothing committed is read again; everything new is read exactly by its owner.
        await produce("b", 10)
        later: list[bytes] = []
        for _ in range(40):
            for member in (first, second):
                batch = await member.getmany(timeout_ms=200)
                later.extend(r.value for rs in batch.values() for r in rs)
            if len(later) >= 10:
                break
        assert sorted(later) == sorted(f"b{i}".encode() for i in range(10))
    finally:
        await producer.stop()
        await first.stop()
        await second.stop()
