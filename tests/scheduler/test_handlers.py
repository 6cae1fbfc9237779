"""The scheduler's use cases with in-memory ports and a fake clock: exact, and without sleeps."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from scheduler.domain import State
from scheduler.handlers import Scheduler, SchedulerConfig, expand
from shared.events import (
    AccountStatus,
    AccountStatusChanged,
    AssetApproved,
    ErrorCode,
    Event,
    Platform,
    PostCancelled,
    PostCancelRequested,
    PostCommandRejected,
    PostDue,
    PostFailed,
    PostFormat,
    PostHeld,
    PostPublished,
    PostRescheduleRequested,
    PostRetryRequested,
    PostRetryScheduled,
    PostScheduled,
    Schedule,
    Target,
    utc_now,
)
from shared.ids import post_id_for
from shared.kafka import Delivery
from tests.scheduler.fakes import FakeAccounts, FakeClock, FakeSink, FakeStore

ENVELOPE: dict[str, Any] = {"producer": "tests", "workspace_id": "ws", "correlation_id": "asset-1"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def accounts() -> FakeAccounts:
    return FakeAccounts()


@pytest.fixture
async def scheduler(clock: FakeClock, sink: FakeSink, store: FakeStore, accounts: FakeAccounts) -> Scheduler:
    s = Scheduler(store=store, accounts=accounts, sink=sink, clock=clock, config=SchedulerConfig())
    await s.assign({0})
    return s


def approved(schedule: Schedule, *targets: Target, occurred_at: datetime | None = None) -> AssetApproved:
    return AssetApproved(
        **ENVELOPE,
        occurred_at=occurred_at or utc_now(),
        asset_id="asset-1",
        caption="Hello",
        targets=list(targets),
        schedule=schedule,
    )


X = Target(target_id="t-x", platform=Platform.X, account_id="acct-x", format=PostFormat.POST, timezone="Europe/Berlin")
IG = Target(
    target_id="t-ig", platform=Platform.INSTAGRAM, account_id="acct-ig", format=PostFormat.REEL, caption="IG only"
)


def deliver(*events: Event) -> list[Delivery[Event]]:
    return [Delivery(e, "t", 0, i) for i, e in enumerate(events)]


def about(post: PostScheduled, **fields: Any) -> dict[str, Any]:
    """The fields every publisher event about `post` carries, plus `fields`."""
    return {
        **ENVELOPE,
        "post_id": post.post_id,
        "asset_id": post.asset_id,
        "platform": post.platform,
        "account_id": post.account_id,
        **fields,
    }


def first_retry_in_a_minute(post: PostScheduled, clock: FakeClock) -> PostRetryScheduled:
    return PostRetryScheduled(
        **about(
            post,
            error_code=ErrorCode.NETWORK_ERROR,
            error_message="502",
            attempt=1,
            next_attempt=2,
            next_attempt_at=clock.now() + timedelta(minutes=1),
        )
    )


async def schedule(scheduler: Scheduler, sink: FakeSink, asset: AssetApproved) -> list[PostScheduled]:
    out = expand(asset)
    scheduled = [e for _, e, _ in out if isinstance(e, PostScheduled)]
    await scheduler.handle(deliver(*scheduled))
    sink.clear()
    return scheduled


def test_expand_gives_one_post_per_target_with_deterministic_ids(clock: FakeClock) -> None:
    asset = approved(Schedule(at_utc=clock.now() + timedelta(hours=1)), X, IG)
    first, again = expand(asset), expand(asset)
    assert [(t, e.post_id, k) for t, e, k in first] == [  # type: ignore[attr-defined]
        ("posts.scheduled.v1", post_id_for("asset-1", "t-x"), post_id_for("asset-1", "t-x")),
        ("posts.scheduled.v1", post_id_for("asset-1", "t-ig"), post_id_for("asset-1", "t-ig")),
    ]
    assert [e.event_id for _, e, _ in first] == [e.event_id for _, e, _ in again]
    captions = [e.caption for _, e, _ in first]  # type: ignore[attr-defined]
    assert captions == ["Hello", "IG only"]


def test_a_local_time_uses_the_target_account_zone_and_a_bad_zone_fails_the_post() -> None:
    wall = datetime(2026, 12, 1, 9, 0)
    bad = Target(
        target_id="t-bad", platform=Platform.X, account_id="a", format=PostFormat.POST, timezone="Nowhere/Land"
    )
    (ok, failed) = expand(approved(Schedule(local_time=wall), X, bad))
    assert ok[1].due_at.isoformat() == "2026-12-01T08:00:00+00:00"  # type: ignore[attr-defined]
    assert failed[0] == "posts.failed.v1"
    assert failed[1].error_code is ErrorCode.CONTENT_REJECTED  # type: ignore[attr-defined]
    assert "Nowhere/Land" in failed[1].error_message  # type: ignore[attr-defined]


async def test_a_post_is_handed_over_at_its_due_time_and_not_before(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink
) -> None:
    await schedule(scheduler, sink, approved(Schedule(at_utc=clock.now() + timedelta(seconds=30)), X, IG))
    assert scheduler.seconds_until_next_due() == 30
    clock.advance(seconds=29.999)
    assert await scheduler.dispatch_due() == 0
    clock.advance(seconds=0.001)
    assert await scheduler.dispatch_due() == 2
    topics = sorted((t, k) for t, _, k in sink.sent)
    assert topics == [("posts.due.instagram.v1", "acct-ig"), ("posts.due.x.v1", "acct-x")]
    due = sink.of(PostDue)
    assert {e.attempt for e in due} == {1}  # type: ignore[attr-defined]
    assert {e.producer for e in due} == {"scheduler"}
    assert await scheduler.dispatch_due() == 0  # handed over once


async def test_redelivered_scheduling_creates_nothing_new(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink
) -> None:
    asset = approved(Schedule(publish_now=True), X, occurred_at=clock.now())
    await schedule(scheduler, sink, asset)
    await schedule(scheduler, sink, asset)
    assert await scheduler.dispatch_due() == 1


async def test_cancel_before_due_and_refusal_after_handover(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink
) -> None:
    (x_post, ig_post) = await schedule(
        scheduler, sink, approved(Schedule(at_utc=clock.now() + timedelta(minutes=5)), X, IG)
    )
    cancel = PostCancelRequested(**ENVELOPE, post_id=x_post.post_id, reason="typo")
    await scheduler.handle(deliver(cancel))
    (cancelled,) = sink.of(PostCancelled)
    assert cancelled.post_id == x_post.post_id  # type: ignore[attr-defined]
    clock.advance(minutes=5)
    assert await scheduler.dispatch_due() == 1  # only the Instagram post
    sink.clear()
    late = PostCancelRequested(**ENVELOPE, post_id=ig_post.post_id)
    await scheduler.handle(deliver(late))
    (rejected,) = sink.of(PostCommandRejected)
    assert rejected.reason == "cannot be cancelled: attempt 1 is already with the publisher"  # type: ignore[attr-defined]
    assert rejected.post_state == "dispatched"  # type: ignore[attr-defined]


async def test_a_command_fetched_with_its_post_applies_after_the_creation(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink
) -> None:
    # One batch spans several topics in no causal order: here the cancel comes before the post.
    (post,) = [e for _, e, _ in expand(approved(Schedule(at_utc=clock.now() + timedelta(minutes=5)), X))]
    assert isinstance(post, PostScheduled)
    cancel = PostCancelRequested(**ENVELOPE, post_id=post.post_id)
    await scheduler.handle(deliver(cancel, post))
    (cancelled,) = sink.of(PostCancelled)
    assert cancelled.post_id == post.post_id  # type: ignore[attr-defined]
    assert sink.of(PostCommandRejected) == []
    clock.advance(minutes=5)
    assert await scheduler.dispatch_due() == 0


async def test_a_redelivered_cancel_repeats_its_outcome(scheduler: Scheduler, clock: FakeClock, sink: FakeSink) -> None:
    (post,) = await schedule(scheduler, sink, approved(Schedule(at_utc=clock.now() + timedelta(minutes=5)), X))
    cancel = PostCancelRequested(**ENVELOPE, post_id=post.post_id)
    await scheduler.handle(deliver(cancel))
    await scheduler.handle(deliver(cancel))
    first, second = sink.of(PostCancelled)
    assert first.event_id == second.event_id
    assert sink.of(PostCommandRejected) == []


async def test_reschedule_moves_the_due_time_in_the_account_zone(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink
) -> None:
    (post,) = await schedule(scheduler, sink, approved(Schedule(at_utc=clock.now() + timedelta(minutes=5)), X))
    move = PostRescheduleRequested(
        **ENVELOPE, post_id=post.post_id, schedule=Schedule(local_time=datetime(2026, 11, 22, 14, 0))
    )
    await scheduler.handle(deliver(move))
    (rescheduled,) = sink.of(PostScheduled)
    assert rescheduled.due_at.isoformat() == "2026-11-22T13:00:00+00:00"  # type: ignore[attr-defined]
    clock.advance(minutes=5)
    assert await scheduler.dispatch_due() == 0
    clock.advance(minutes=55)
    assert await scheduler.dispatch_due() == 1


async def test_commands_for_unknown_posts_and_bad_zones_are_refused_visibly(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink
) -> None:
    (post,) = await schedule(scheduler, sink, approved(Schedule(at_utc=clock.now() + timedelta(minutes=5)), X))
    bad = PostRescheduleRequested(
        **ENVELOPE, post_id=post.post_id, schedule=Schedule(local_time=datetime(2026, 12, 1, 9), timezone="Bad/Zone")
    )
    await scheduler.handle(deliver(bad, PostRetryRequested(**ENVELOPE, post_id="nope")))
    reasons = [e.reason for e in sink.of(PostCommandRejected)]  # type: ignore[attr-defined]
    assert reasons == ["unknown IANA timezone 'Bad/Zone'", "no such post is scheduled"]


async def test_publisher_retry_is_handed_over_again_with_the_next_attempt(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink
) -> None:
    (post,) = await schedule(scheduler, sink, approved(Schedule(publish_now=True), X, occurred_at=clock.now()))
    await scheduler.dispatch_due()
    retry = first_retry_in_a_minute(post, clock)
    await scheduler.handle(deliver(retry, retry))
    sink.clear()
    clock.advance(minutes=1)
    assert await scheduler.dispatch_due() == 1
    assert [e.attempt for e in sink.of(PostDue)] == [2]  # type: ignore[attr-defined]


async def test_a_batch_delivered_before_the_assignment_has_loaded_is_applied_after_it(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink, store: FakeStore, accounts: FakeAccounts
) -> None:
    # aiokafka fetches a newly assigned partition before awaiting the assignment callback; a batch
    # skipped in that gap would have its offsets committed and its events lost.
    (post,) = await schedule(scheduler, sink, approved(Schedule(publish_now=True), X, occurred_at=clock.now()))
    await scheduler.dispatch_due()
    await scheduler.record_dispatched()
    restarted = Scheduler(store=store, accounts=accounts, sink=sink, clock=clock, config=SchedulerConfig())
    await restarted.revoke(set())  # aiokafka's join starts with a revocation, empty on a first join
    retry = first_retry_in_a_minute(post, clock)
    handled = asyncio.create_task(restarted.handle(deliver(retry)))
    await asyncio.sleep(0.01)
    assert not handled.done()  # waits for the assignment rather than skipping the batch
    await restarted.assign({0})
    await handled
    sink.clear()
    clock.advance(minutes=1)
    assert await restarted.dispatch_due() == 1
    assert [e.attempt for e in sink.of(PostDue)] == [2]  # type: ignore[attr-defined]


async def test_held_post_resumes_when_its_account_is_reconnected(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink
) -> None:
    (post,) = await schedule(scheduler, sink, approved(Schedule(publish_now=True), X, occurred_at=clock.now()))
    await scheduler.dispatch_due()
    hold = PostHeld(
        **about(post, error_code=ErrorCode.TOKEN_EXPIRED, reason="reconnect", attempt=1, occurred_at=clock.now())
    )
    await scheduler.handle(deliver(hold))
    assert scheduler.timetable.get(post.post_id).state is State.HELD  # type: ignore[union-attr]
    clock.advance(minutes=10)
    sink.clear()
    back = AccountStatusChanged(
        **ENVELOPE, account_id="acct-x", platform=Platform.X, status=AccountStatus.ACTIVE, occurred_at=clock.now()
    )
    await scheduler.account_status_changed(back)
    assert [e.attempt for e in sink.of(PostScheduled)] == [2]  # type: ignore[attr-defined]
    assert await scheduler.dispatch_due() == 1
    assert [e.attempt for e in sink.of(PostDue)] == [2]  # type: ignore[attr-defined]


async def test_a_hold_reported_after_the_reconnect_is_released_at_once(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink, accounts: FakeAccounts
) -> None:
    (post,) = await schedule(scheduler, sink, approved(Schedule(publish_now=True), X, occurred_at=clock.now()))
    await scheduler.dispatch_due()
    hold = PostHeld(
        **about(post, error_code=ErrorCode.TOKEN_EXPIRED, reason="reconnect", attempt=1, occurred_at=clock.now())
    )
    await accounts.record_active("acct-x", clock.now() + timedelta(seconds=1))
    await scheduler.handle(deliver(hold))
    assert scheduler.timetable.get(post.post_id).state is State.SCHEDULED  # type: ignore[union-attr]


async def test_overdue_posts_publish_late_within_the_window_else_fail_as_missed(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink
) -> None:
    recent = Target(target_id="recent", platform=Platform.X, account_id="a", format=PostFormat.POST)
    stale = Target(target_id="stale", platform=Platform.X, account_id="a", format=PostFormat.POST)
    await schedule(scheduler, sink, approved(Schedule(at_utc=clock.now() - timedelta(hours=47)), recent))
    await schedule(scheduler, sink, approved(Schedule(at_utc=clock.now() - timedelta(hours=49)), stale))
    assert await scheduler.dispatch_due() == 2
    assert [e.post_id for e in sink.of(PostDue)] == [post_id_for("asset-1", "recent")]  # type: ignore[attr-defined]
    (missed,) = sink.of(PostFailed)
    assert missed.error_code is ErrorCode.MISSED  # type: ignore[attr-defined]
    assert missed.post_id == post_id_for("asset-1", "stale")  # type: ignore[attr-defined]


async def test_nothing_is_lost_when_emitting_fails(scheduler: Scheduler, clock: FakeClock, sink: FakeSink) -> None:
    await schedule(scheduler, sink, approved(Schedule(publish_now=True), X, occurred_at=clock.now()))
    sink.fail_next = True
    with pytest.raises(ConnectionError):
        await scheduler.dispatch_due()
    assert await scheduler.dispatch_due() == 1
    assert len(sink.of(PostDue)) == 1


async def test_a_new_owner_does_not_hand_over_what_the_last_one_did(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink, store: FakeStore, accounts: FakeAccounts
) -> None:
    await schedule(scheduler, sink, approved(Schedule(publish_now=True), X, IG, occurred_at=clock.now()))
    await scheduler.dispatch_due()
    await scheduler.revoke({0})
    successor = Scheduler(store=store, accounts=accounts, sink=sink, clock=clock, config=SchedulerConfig())
    await successor.assign({0})
    assert len(successor.timetable) == 2
    assert await successor.dispatch_due() == 0
    assert len(sink.of(PostDue)) == 2


async def test_posts_handed_over_moments_apart_are_recorded_in_one_write(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink, store: FakeStore
) -> None:
    first = Target(target_id="first", platform=Platform.X, account_id="a", format=PostFormat.POST)
    second = Target(target_id="second", platform=Platform.X, account_id="b", format=PostFormat.POST)
    await schedule(scheduler, sink, approved(Schedule(at_utc=clock.now()), first))
    await schedule(scheduler, sink, approved(Schedule(at_utc=clock.now() + timedelta(milliseconds=5)), second))
    assert await scheduler.dispatch_due() == 1
    clock.advance(milliseconds=5)
    assert await scheduler.dispatch_due() == 1
    assert len(sink.of(PostDue)) == 2
    assert store.dispatched == {}
    assert scheduler.seconds_until_next_due() == pytest.approx(0.245)  # the timer wakes to record them
    clock.advance(milliseconds=245)
    assert await scheduler.dispatch_due() == 0
    assert store.dispatch_writes == 1
    assert {post_id for post_id, _ in store.dispatched} == {
        post_id_for("asset-1", "first"),
        post_id_for("asset-1", "second"),
    }
    assert scheduler.seconds_until_next_due() is None


async def test_a_handover_lost_with_its_replica_before_being_recorded_is_made_again_with_the_same_event_id(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink, store: FakeStore, accounts: FakeAccounts
) -> None:
    # The publisher's attempt ledger knows the event's attempt: the second handover publishes nothing.
    await schedule(scheduler, sink, approved(Schedule(publish_now=True), X, occurred_at=clock.now()))
    await scheduler.dispatch_due()
    (first,) = sink.of(PostDue)
    successor = Scheduler(store=store, accounts=accounts, sink=sink, clock=clock, config=SchedulerConfig())
    await successor.assign({0})
    assert await successor.dispatch_due() == 1
    assert [(e.event_id, e.attempt) for e in sink.of(PostDue)] == [(first.event_id, 1)] * 2  # type: ignore[attr-defined]


async def test_finished_posts_leave_the_timetable(scheduler: Scheduler, clock: FakeClock, sink: FakeSink) -> None:
    (post,) = await schedule(scheduler, sink, approved(Schedule(publish_now=True), X, occurred_at=clock.now()))
    await scheduler.dispatch_due()
    published = PostPublished(**about(post, remote_id="1", published_at=clock.now(), attempt=1))
    await scheduler.handle(deliver(published))
    assert scheduler.timetable.get(post.post_id) is None
    await scheduler.handle(deliver(PostRetryRequested(**ENVELOPE, post_id=post.post_id)))
    reasons = [e.reason for e in sink.of(PostCommandRejected)]  # type: ignore[attr-defined]
    assert reasons == ["only a failed or unconfirmed post can be retried; this one is published"]


async def test_a_person_can_retry_a_failed_post_as_a_new_attempt(
    scheduler: Scheduler, clock: FakeClock, sink: FakeSink
) -> None:
    (post,) = await schedule(scheduler, sink, approved(Schedule(publish_now=True), X, occurred_at=clock.now()))
    await scheduler.dispatch_due()
    failed = PostFailed(
        **about(post, error_code=ErrorCode.PUBLISH_UNCONFIRMED, error_message="timeout after send", attempts=1)
    )
    await scheduler.handle(deliver(failed))
    assert scheduler.timetable.get(post.post_id) is None
    sink.clear()
    await scheduler.handle(deliver(PostRetryRequested(**ENVELOPE, post_id=post.post_id)))
    assert await scheduler.dispatch_due() == 1
    assert [e.attempt for e in sink.of(PostDue)] == [2]  # type: ignore[attr-defined]


async def test_a_burst_larger_than_one_dispatch_chunk_is_handed_over_whole(
    clock: FakeClock, sink: FakeSink, store: FakeStore, accounts: FakeAccounts
) -> None:
    scheduler = Scheduler(
        store=store, accounts=accounts, sink=sink, clock=clock, config=SchedulerConfig(dispatch_chunk=7)
    )
    await scheduler.assign({0})
    targets = [
        Target(target_id=f"t{i}", platform=Platform.X, account_id=f"a{i}", format=PostFormat.POST) for i in range(50)
    ]
    await schedule(scheduler, sink, approved(Schedule(at_utc=clock.now()), *targets))
    assert await scheduler.dispatch_due() == 50
    assert len({e.post_id for e in sink.of(PostDue)}) == 50  # type: ignore[attr-defined]
