"""Kafka subscribers of the metrics service.

`posts.published.v1` is keyed by post: the replica consuming partition k owns the pull plans of
the posts on it, loads them when the partition is assigned and drops them when it is revoked.
"""

from __future__ import annotations

from aiokafka import ConsumerRebalanceListener, TopicPartition

from metrics.handlers import MetricsService
from shared.events import PostPublished
from shared.kafka import EventBus
from shared.topics import POSTS_PUBLISHED

GROUP = "metrics"


class PartitionOwnership(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: MetricsService, bus: EventBus) -> None:
        self._service = service
        self._topic = bus.topic(POSTS_PUBLISHED)

    def _partitions(self, assigned: set[TopicPartition]) -> set[int]:
        return {tp.partition for tp in assigned if tp.topic == self._topic}

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._service.revoke(self._partitions(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._service.assign(self._partitions(assigned))


def register(bus: EventBus, service: MetricsService, *, batch_size: int, session_timeout_ms: int) -> None:
    bus.subscribe_batch(
        [POSTS_PUBLISHED],
        group_id=GROUP,
        events=[PostPublished],
        handler=service.on_published,
        max_records=batch_size,
        listener=PartitionOwnership(service, bus),
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=session_timeout_ms // 4,
    )
