"""The due consumer's account workers, without a broker: who publishes next when slots are short."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from publisher.entrypoints.consumers import ConsumerOptions, DueConsumer
from publisher.instruments import build_publisher_metrics
from shared.events import Platform, PostDue
from shared.kafka import EventBus, build_broker
from shared.metrics import build_metrics
from shared.settings import KafkaSettings
from tests.publisher.support import due


class RecordingPublisher:
    def __init__(self) -> None:
        self.order: list[str] = []

    async def publish_due(self, job: PostDue) -> None:
        await asyncio.sleep(0.01)
        self.order.append(job.post_id)


async def test_accounts_with_a_backlog_take_turns_for_a_slot() -> None:
    kafka = KafkaSettings()
    metrics = build_metrics()
    publisher = RecordingPublisher()
    consumer = DueConsumer(
        platform=Platform.X,
        publisher=publisher,  # type: ignore[arg-type]  # only publish_due is called
        rates=None,  # type: ignore[arg-type]  # only on a rebalance
        bus=EventBus(build_broker(kafka, service="tests", metrics=metrics), kafka, metrics, client_id="tests"),
        kafka=kafka,
        metrics=build_publisher_metrics(),
        slots=asyncio.Semaphore(1),
        options=ConsumerOptions(),
    )
    tp = TopicPartition("posts.due.x.v1", 0)
    posts = [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1"), ("c", "c1")]
    for offset, (account, post) in enumerate(posts):
        consumer._accept(tp, offset, due(Platform.X, account_id=account, post_id=post))

    async with asyncio.timeout(10):
        while len(publisher.order) < len(posts):  # noqa: ASYNC110 - polling the fake's record
            await asyncio.sleep(0.01)

    # One post per turn: b and c do not wait for all of a's backlog; each account stays in order.
    assert publisher.order == ["a1", "b1", "c1", "a2", "a3"]
