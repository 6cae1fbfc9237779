"""Kafka subscribers of the scheduler.

- `assets.approved.v1` (any replica): expand each asset into one PostScheduled per target.
- the post-keyed topics (co-partitioned; the range assignor gives partition k of every one of
  them to the same replica): that replica owns those posts, loads them when the partition is
  assigned and drops them when it is revoked.
- `accounts.status-changed.v1`: read by every replica (a group of its own), each acting on the
  posts it owns.
"""

from __future__ import annotations

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from scheduler.handlers import Scheduler, expand
from scheduler.ports import EventSink
from shared.events import (
    AccountStatusChanged,
    AssetApproved,
    Event,
    PostCancelRequested,
    PostFailed,
    PostHeld,
    PostPublished,
    PostRescheduleRequested,
    PostRetryRequested,
    PostRetryScheduled,
    PostScheduled,
)
from shared.kafka import Delivery, EventBus
from shared.topics import (
    ACCOUNTS_STATUS_CHANGED,
    ASSETS_APPROVED,
    POSTS_COMMANDS,
    POSTS_FAILED,
    POSTS_HELD,
    POSTS_PUBLISHED,
    POSTS_RETRY_SCHEDULED,
    POSTS_SCHEDULED,
)

OWNER_GROUP = "scheduler"
EXPANDER_GROUP = "scheduler-expander"
OWNED_TOPICS = (POSTS_SCHEDULED, POSTS_COMMANDS, POSTS_RETRY_SCHEDULED, POSTS_HELD, POSTS_PUBLISHED, POSTS_FAILED)
OWNED_EVENTS: tuple[type[Event], ...] = (
    PostScheduled,
    PostCancelRequested,
    PostRescheduleRequested,
    PostRetryRequested,
    PostRetryScheduled,
    PostHeld,
    PostPublished,
    PostFailed,
)


class PartitionOwnership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Moves posts in and out of this replica's timetable as Kafka moves partitions."""

    def __init__(self, scheduler: Scheduler, bus: EventBus) -> None:
        self._scheduler = scheduler
        self._anchor = bus.topic(POSTS_SCHEDULED)  # partition k of every owned topic goes together

    def _partitions(self, assigned: set[TopicPartition]) -> set[int]:
        return {tp.partition for tp in assigned if tp.topic == self._anchor}

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._scheduler.revoke(self._partitions(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._scheduler.assign(self._partitions(assigned))


def register(
    bus: EventBus, scheduler: Scheduler, sink: EventSink, *, replica_id: str, batch_size: int, session_timeout_ms: int
) -> None:
    async def on_assets_approved(batch: list[Delivery[AssetApproved]]) -> None:
        await sink.emit([out for delivery in batch for out in expand(delivery.event)])

    bus.subscribe_batch(
        [ASSETS_APPROVED],
        group_id=EXPANDER_GROUP,
        events=[AssetApproved],
        handler=on_assets_approved,
        max_records=batch_size,
    )
    bus.subscribe_batch(
        OWNED_TOPICS,
        group_id=OWNER_GROUP,
        events=OWNED_EVENTS,
        handler=scheduler.handle,
        max_records=batch_size,
        partition_assignment_strategy=[RangePartitionAssignor],
        listener=PartitionOwnership(scheduler, bus),
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=session_timeout_ms // 4,
    )
    bus.subscribe(
        ACCOUNTS_STATUS_CHANGED,
        group_id=f"scheduler-accounts-{replica_id}",
        events=[AccountStatusChanged],
        handler=scheduler.account_status_changed,
    )
