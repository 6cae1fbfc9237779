"""Kafka subscribers of the metrics service.

`posts.published.v1` is keyed by post: the replica consuming partition k owns the pull plans of
the posts on it, loads them when the partition is assigned and drops them when it is revoked.
`accounts.status-changed.v1` is keyed by account and owned the same way, for the accounts' daily
snapshots. One consumer (one group) reads both, so the service has one membership to rebalance.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition

from metrics.account_handlers import AccountSnapshots
from metrics.handlers import MetricsService
from shared.events import AccountStatusChanged, PostPublished
from shared.kafka import Delivery, EventBus
from shared.topics import ACCOUNTS_STATUS_CHANGED, POSTS_PUBLISHED

GROUP = "metrics"


class PartitionOwner(Protocol):
    async def assign(self, partitions: Collection[int]) -> None: ...

    async def revoke(self, partitions: Collection[int]) -> None: ...


class PartitionOwnership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands each owner the partitions of its topic."""

    def __init__(self, owners: Mapping[str, PartitionOwner]) -> None:
        self._owners = owners

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for topic, owner in self._owners.items():
            await owner.revoke({tp.partition for tp in revoked if tp.topic == topic})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        for topic, owner in self._owners.items():
            await owner.assign({tp.partition for tp in assigned if tp.topic == topic})


def register(
    bus: EventBus, service: MetricsService, accounts: AccountSnapshots, *, batch_size: int, session_timeout_ms: int
) -> None:
    async def on_batch(deliveries: Sequence[Delivery[PostPublished | AccountStatusChanged]]) -> None:
        published = [
            Delivery(d.event, d.topic, d.partition, d.offset) for d in deliveries if isinstance(d.event, PostPublished)
        ]
        connected = [
            Delivery(d.event, d.topic, d.partition, d.offset)
            for d in deliveries
            if isinstance(d.event, AccountStatusChanged)
        ]
        if published:
            await service.on_published(published)
        if connected:
            await accounts.on_status_changed(connected)

    owners: dict[str, PartitionOwner] = {
        bus.topic(POSTS_PUBLISHED): service,
        bus.topic(ACCOUNTS_STATUS_CHANGED): accounts,
    }
    bus.subscribe_batch(
        [POSTS_PUBLISHED, ACCOUNTS_STATUS_CHANGED],
        group_id=GROUP,
        events=[PostPublished, AccountStatusChanged],
        handler=on_batch,
        max_records=batch_size,
        listener=PartitionOwnership(owners),
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=session_timeout_ms // 4,
    )
