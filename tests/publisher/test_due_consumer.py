"""The due consumer's account workers, without a broker: who publishes next when slots are short,
and what a rebalance waits for."""

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

P0 = TopicPartition("posts.due.x.v1", 0)
P1 = TopicPartition("posts.due.x.v1", 1)


class RecordingPublisher:
    """Publishes after a short pause; posts named in `blocked` wait until `release` is set."""

    def __init__(self, blocked: frozenset[str] = frozenset()) -> None:
        self.order: list[str] = []
        self.blocked = blocked
        self.release = asyncio.Event()

    async def publish_due(self, job: PostDue) -> None:
        await asyncio.sleep(0.01)
        if job.post_id in self.blocked:
            await self.release.wait()
        self.order.append(job.post_id)


def consumer_for(publisher: RecordingPublisher, *, slots: int, revoke_grace: float = 20.0) -> DueConsumer:
    kafka = KafkaSettings()
    metrics = build_metrics()
    return DueConsumer(
        platform=Platform.X,
        publisher=publisher,  # type: ignore[arg-type]  # only publish_due is called
        rates=None,  # type: ignore[arg-type]  # forgetting windows on a revoke fails quietly here
        bus=EventBus(build_broker(kafka, service="tests", metrics=metrics), kafka, metrics, client_id="tests"),
        kafka=kafka,
        metrics=build_publisher_metrics(),
        slots=asyncio.Semaphore(slots),
        options=ConsumerOptions(revoke_grace=revoke_grace),
    )


async def published(publisher: RecordingPublisher, count: int) -> None:
    async with asyncio.timeout(10):
        while len(publisher.order) < count:  # noqa: ASYNC110 - polling the fake's record
            await asyncio.sleep(0.01)


async def test_accounts_with_a_backlog_take_turns_for_a_slot() -> None:
    publisher = RecordingPublisher()
    consumer = consumer_for(publisher, slots=1)
    posts = [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1"), ("c", "c1")]
    for offset, (account, post) in enumerate(posts):
        consumer._accept(P0, offset, due(Platform.X, account_id=account, post_id=post))

    await published(publisher, len(posts))

    # One post per turn: b and c do not wait for all of a's backlog; each account stays in order.
    assert publisher.order == ["a1", "b1", "c1", "a2", "a3"]


async def test_a_revoke_waits_for_running_posts_not_for_workers_waiting_for_a_slot() -> None:
    publisher = RecordingPublisher(blocked=frozenset({"a1"}))
    consumer = consumer_for(publisher, slots=1, revoke_grace=60.0)
    consumer._accept(P0, 0, due(Platform.X, account_id="a", post_id="a1"))
    consumer._accept(P1, 0, due(Platform.X, account_id="b", post_id="b1"))
    await asyncio.sleep(0.1)  # a1 holds the only slot; b's worker waits for it

    # b1 is not running, so there is nothing to wait for (the grace period is a minute).
    async with asyncio.timeout(5):
        await consumer.on_partitions_revoked({P1})

    publisher.release.set()
    await published(publisher, 1)
    await asyncio.sleep(0.1)
    assert publisher.order == ["a1"]  # b1 belongs to the partition's new owner now
