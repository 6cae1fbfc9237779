"""Kafka subscribers of the approval service: decode, call a handler, publish what it returns.

The post board is a read model: every post status event, command rejection and metrics sync is
folded into the post it names. Handlers are idempotent, so redelivery changes nothing.
"""

from __future__ import annotations

from approval import handlers
from approval.handlers import Ports
from shared import topics
from shared.events import (
    AccountStatusChanged,
    Event,
    PostCancelled,
    PostCommandRejected,
    PostFailed,
    PostHeld,
    PostMetricsSynced,
    PostPublished,
    PostRetryScheduled,
    PostScheduled,
)
from shared.kafka import Delivery
from shared.service import Infrastructure

READ_MODEL_GROUP = "approval.post-board"
ACCOUNTS_GROUP = "approval.accounts"

READ_MODEL_TOPICS = (
    topics.POSTS_SCHEDULED,
    topics.POSTS_PUBLISHED,
    topics.POSTS_FAILED,
    topics.POSTS_RETRY_SCHEDULED,
    topics.POSTS_HELD,
    topics.POSTS_CANCELLED,
    topics.POSTS_COMMAND_REJECTED,
    topics.METRICS_SYNCED,
)
READ_MODEL_EVENTS: tuple[type[Event], ...] = (
    PostScheduled,
    PostPublished,
    PostFailed,
    PostRetryScheduled,
    PostHeld,
    PostCancelled,
    PostCommandRejected,
    PostMetricsSynced,
)


def register(infra: Infrastructure, ports: Ports) -> None:
    async def on_post_events(deliveries: list[Delivery[Event]]) -> None:
        # In order: events of one post share a partition, so they arrive in the order they were sent.
        await handlers.apply_post_events(ports, [delivery.event for delivery in deliveries])

    async def on_account_status(event: AccountStatusChanged) -> None:
        await handlers.apply_account_status(ports, event)

    infra.bus.subscribe_batch(
        READ_MODEL_TOPICS, group_id=READ_MODEL_GROUP, events=READ_MODEL_EVENTS, handler=on_post_events
    )
    infra.bus.subscribe(
        topics.ACCOUNTS_STATUS_CHANGED,
        group_id=ACCOUNTS_GROUP,
        events=[AccountStatusChanged],
        handler=on_account_status,
    )
