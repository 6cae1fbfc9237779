"""The scheduler as a real process on the real Kafka broker and MongoDB-compatible server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio

from shared import topics
from shared.events import (
    AccountStatus,
    AccountStatusChanged,
    AssetApproved,
    ErrorCode,
    Platform,
    PostCancelled,
    PostCancelRequested,
    PostCommandRejected,
    PostDue,
    PostFailed,
    PostFormat,
    PostHeld,
    PostRescheduleRequested,
    PostRetryScheduled,
    PostScheduled,
    Schedule,
    Target,
    utc_now,
)
from shared.ids import post_id_for
from shared.kafka import EventBus, ensure_topics
from shared.settings import KafkaSettings, MongoSettings
from tests.support import ServiceProcess, TopicWatcher, running_bus

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

WATCHED = (
    topics.POSTS_SCHEDULED,
    topics.POSTS_CANCELLED,
    topics.POSTS_FAILED,
    topics.POSTS_COMMAND_REJECTED,
    *(topics.posts_due(p) for p in Platform),
)


class Harness:
    def __init__(self, bus: EventBus, watcher: TopicWatcher) -> None:
        self.bus = bus
        self.watch = watcher

    async def approve(self, schedule: Schedule, *platforms: Platform, asset_id: str | None = None) -> AssetApproved:
        asset_id = asset_id or f"asset-{uuid4().hex[:8]}"
        targets = [
            Target(
                target_id=f"t-{p.value}", platform=p, account_id=f"acct-{p.value}-{asset_id}", format=PostFormat.POST
            )
            for p in platforms
        ]
        event = AssetApproved(
            producer="tests",
            workspace_id="ws",
            correlation_id=asset_id,
            asset_id=asset_id,
            caption="hi",
            targets=targets,
            schedule=schedule,
        )
        await self.bus.publish(topics.ASSETS_APPROVED, event, key=asset_id)
        return event

    async def send(self, topic: str, event: Any, key: str) -> None:
        await self.bus.publish(topic, event, key=key)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(
    kafka_settings: KafkaSettings, mongo_settings: MongoSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    run = uuid4().hex[:8]
    settings = kafka_settings.model_copy(update={"topic_prefix": f"sched{run}.", "partitions": 4})
    await ensure_topics(settings, topics.all_topics())
    process = ServiceProcess(
        "scheduler",
        {
            "SOCIALPUB_KAFKA__BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "SOCIALPUB_KAFKA__TOPIC_PREFIX": settings.topic_prefix,
            "SOCIALPUB_KAFKA__PARTITIONS": "4",
            "SOCIALPUB_MONGO__URL": mongo_settings.url.get_secret_value(),
            "SCHEDULER_MONGO__DATABASE": f"test_scheduler_{run}",
        },
        tmp_path_factory.mktemp("scheduler") / "scheduler.log",
    )
    watcher = TopicWatcher(settings.bootstrap_servers, settings.topic_prefix, WATCHED)
    try:
        await process.wait_ready()
        async with running_bus(settings) as bus:
            await watcher.start()
            try:
                yield Harness(bus, watcher)
            finally:
                await watcher.stop()
    finally:
        assert process.terminate() == 0, process.log_tail()


async def test_posts_fall_due_on_time_one_per_target(harness: Harness) -> None:
    due = utc_now() + timedelta(seconds=3)
    asset = await harness.approve(Schedule(at_utc=due), Platform.X, Platform.INSTAGRAM)
    scheduled = await harness.watch.wait_for(PostScheduled, 2, asset_id=asset.asset_id)
    assert {s.post_id for s in scheduled} == {
        post_id_for(asset.asset_id, "t-x"),
        post_id_for(asset.asset_id, "t-instagram"),
    }
    await harness.watch.wait_for(PostDue, 2, asset_id=asset.asset_id)
    arrivals = harness.watch.arrivals(PostDue, asset_id=asset.asset_id)
    assert sorted(a.topic for a in arrivals) == ["posts.due.instagram.v1", "posts.due.x.v1"]
    for arrival in arrivals:
        assert arrival.key == arrival.event.account_id  # type: ignore[attr-defined]
        assert arrival.event.attempt == 1  # type: ignore[attr-defined]
        lateness = arrival.received_at - due.timestamp()
        assert -0.05 < lateness < 2.0, f"PostDue {lateness:.3f}s after its due time"


async def test_a_redelivered_asset_creates_no_second_post(harness: Harness) -> None:
    asset = await harness.approve(Schedule(publish_now=True), Platform.LINKEDIN)
    await harness.send(topics.ASSETS_APPROVED, asset, asset.asset_id)  # the same event again
    await harness.watch.wait_for(PostDue, asset_id=asset.asset_id)
    await asyncio.sleep(2)
    assert len(harness.watch.events(PostDue, asset_id=asset.asset_id)) == 1


async def test_cancel_before_due_emits_cancelled_and_nothing_falls_due(harness: Harness) -> None:
    due = utc_now() + timedelta(seconds=4)
    asset = await harness.approve(Schedule(at_utc=due), Platform.PINTEREST)
    (post,) = await harness.watch.wait_for(PostScheduled, asset_id=asset.asset_id)
    cancel = PostCancelRequested(
        producer="tests", workspace_id="ws", correlation_id=asset.asset_id, post_id=post.post_id
    )
    await harness.send(topics.POSTS_COMMANDS, cancel, post.post_id)
    await harness.watch.wait_for(PostCancelled, post_id=post.post_id)
    await asyncio.sleep(max(0.0, (due - utc_now()).total_seconds()) + 1.5)
    assert harness.watch.events(PostDue, post_id=post.post_id) == []


async def test_reschedule_moves_the_due_time(harness: Harness) -> None:
    asset = await harness.approve(Schedule(at_utc=utc_now() + timedelta(hours=1)), Platform.THREADS)
    (post,) = await harness.watch.wait_for(PostScheduled, asset_id=asset.asset_id)
    new_due = utc_now() + timedelta(seconds=2)
    move = PostRescheduleRequested(
        producer="tests",
        workspace_id="ws",
        correlation_id=asset.asset_id,
        post_id=post.post_id,
        schedule=Schedule(at_utc=new_due),
    )
    await harness.send(topics.POSTS_COMMANDS, move, post.post_id)
    (due,) = await harness.watch.wait_for(PostDue, post_id=post.post_id, within=15)
    assert due.due_at == new_due


async def test_retry_and_hold_release_re_emit_with_the_next_attempt(harness: Harness) -> None:
    asset = await harness.approve(Schedule(publish_now=True), Platform.TIKTOK, Platform.YOUTUBE)
    first = await harness.watch.wait_for(PostDue, 2, asset_id=asset.asset_id)
    tiktok = next(d for d in first if d.platform is Platform.TIKTOK)
    youtube = next(d for d in first if d.platform is Platform.YOUTUBE)
    common: dict[str, Any] = {
        "producer": "publisher",
        "workspace_id": "ws",
        "correlation_id": asset.asset_id,
        "asset_id": asset.asset_id,
    }

    retry = PostRetryScheduled(
        **common,
        post_id=tiktok.post_id,
        platform=Platform.TIKTOK,
        account_id=tiktok.account_id,
        error_code=ErrorCode.NETWORK_ERROR,
        error_message="502",
        attempt=1,
        next_attempt=2,
        next_attempt_at=utc_now() + timedelta(seconds=2),
    )
    await harness.send(topics.POSTS_RETRY_SCHEDULED, retry, tiktok.post_id)
    hold = PostHeld(
        **common,
        post_id=youtube.post_id,
        platform=Platform.YOUTUBE,
        account_id=youtube.account_id,
        error_code=ErrorCode.TOKEN_EXPIRED,
        reason="token expired: reconnect",
        attempt=1,
    )
    await harness.send(topics.POSTS_HELD, hold, youtube.post_id)
    await harness.watch.wait_for(PostDue, post_id=tiktok.post_id, attempt=2, within=15)

    await asyncio.sleep(1)
    assert harness.watch.events(PostDue, post_id=youtube.post_id, attempt=2) == []
    back = AccountStatusChanged(
        producer="approval",
        workspace_id="ws",
        correlation_id=youtube.account_id,
        account_id=youtube.account_id,
        platform=Platform.YOUTUBE,
        status=AccountStatus.ACTIVE,
        previous_status=AccountStatus.TOKEN_EXPIRED,
    )
    await harness.send(topics.ACCOUNTS_STATUS_CHANGED, back, youtube.account_id)
    await harness.watch.wait_for(PostDue, post_id=youtube.post_id, attempt=2, within=15)


async def test_overdue_posts_publish_late_or_fail_as_missed(harness: Harness) -> None:
    late = await harness.approve(Schedule(at_utc=utc_now() - timedelta(hours=1)), Platform.FACEBOOK)
    stale = await harness.approve(Schedule(at_utc=utc_now() - timedelta(days=3)), Platform.FACEBOOK)
    await harness.watch.wait_for(PostDue, asset_id=late.asset_id)
    (missed,) = await harness.watch.wait_for(PostFailed, asset_id=stale.asset_id)
    assert missed.error_code is ErrorCode.MISSED
    assert "misfire window" in missed.error_message
    assert harness.watch.events(PostDue, asset_id=stale.asset_id) == []


async def test_cancelling_a_post_already_handed_over_is_refused_with_a_reason(harness: Harness) -> None:
    asset = await harness.approve(Schedule(publish_now=True), Platform.TELEGRAM)
    (due,) = await harness.watch.wait_for(PostDue, asset_id=asset.asset_id)
    cancel = PostCancelRequested(
        producer="tests", workspace_id="ws", correlation_id=asset.asset_id, post_id=due.post_id
    )
    await harness.send(topics.POSTS_COMMANDS, cancel, due.post_id)
    (rejected,) = await harness.watch.wait_for(PostCommandRejected, post_id=due.post_id)
    assert rejected.command == "PostCancelRequested"
    assert "already with the publisher" in rejected.reason
