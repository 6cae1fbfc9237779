"""The scheduler's pure rules: time zones and DST, misfires, and the post state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduler import domain
from scheduler.domain import InvalidSchedule, Post, Refusal, State
from shared.events import Schedule

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def post(state: State = State.SCHEDULED, **changes: object) -> Post:
    values: dict[str, object] = {
        "post_id": "p1",
        "partition": 0,
        "account_id": "a1",
        "state": state,
        "due_at": NOW,
        "attempt": 1,
        "content": {},
        **changes,
    }
    return Post(**values)  # type: ignore[arg-type]


def test_a_local_time_is_converted_with_its_zone() -> None:
    assert domain.local_to_utc(datetime(2026, 7, 1, 9, 0), "America/New_York") == datetime(
        2026, 7, 1, 13, 0, tzinfo=UTC
    )


def test_a_local_time_inside_the_spring_forward_gap_moves_forward_by_the_gap() -> None:
    # Berlin skips 02:00-03:00 on 2026-03-29: 02:30 does not exist and becomes 03:30 CEST.
    utc = domain.local_to_utc(datetime(2026, 3, 29, 2, 30), "Europe/Berlin")
    assert utc == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert utc.astimezone(domain.zone("Europe/Berlin")).hour == 3


def test_an_ambiguous_local_time_takes_the_first_occurrence() -> None:
    # Berlin passes 02:00-03:00 twice on 2026-10-25; the first 02:30 is still CEST (UTC+2).
    assert domain.local_to_utc(datetime(2026, 10, 25, 2, 30), "Europe/Berlin") == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "../etc/passwd"])
def test_unknown_zones_are_rejected_clearly(name: str) -> None:
    with pytest.raises(InvalidSchedule, match="unknown IANA timezone"):
        domain.local_to_utc(datetime(2026, 1, 1, 9), name)


def test_due_time_of_each_kind_of_schedule() -> None:
    wall = datetime(2026, 12, 1, 9, 0)
    assert domain.due_at(Schedule(publish_now=True), account_timezone=None, now=NOW) == NOW
    at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert domain.due_at(Schedule(at_utc=at), account_timezone="Asia/Tokyo", now=NOW) == at
    account_zone = domain.due_at(Schedule(local_time=wall), account_timezone="Asia/Tokyo", now=NOW)
    assert account_zone == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    explicit = domain.due_at(
        Schedule(local_time=wall, timezone="Europe/London"), account_timezone="Asia/Tokyo", now=NOW
    )
    assert explicit == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with pytest.raises(InvalidSchedule, match="needs a timezone"):
        domain.due_at(Schedule(local_time=wall), account_timezone=None, now=NOW)


def test_misfire_window_boundary() -> None:
    window = timedelta(hours=48)
    assert not domain.is_missed(NOW - window, NOW, window)
    assert domain.is_missed(NOW - window - timedelta(seconds=1), NOW, window)


def test_cancel_is_allowed_while_waiting_and_refused_after_handover() -> None:
    assert domain.cancel(post()) == post(State.CANCELLED, reason="cancelled on request")
    assert domain.cancel(post(State.HELD)).state is State.CANCELLED  # type: ignore[union-attr]
    refusal = domain.cancel(post(State.DISPATCHED, attempt=2))
    assert refusal == Refusal("cannot be cancelled: attempt 2 is already with the publisher")
    assert domain.cancel(post(State.PUBLISHED)) == Refusal("cannot be cancelled: the post is already published")


def test_reschedule_keeps_a_held_post_held() -> None:
    later = NOW + timedelta(days=1)
    moved = domain.reschedule(post(State.HELD), later)
    assert isinstance(moved, Post)
    assert (moved.state, moved.due_at) == (State.HELD, later)
    assert isinstance(domain.reschedule(post(State.FAILED), later), Refusal)


def test_manual_retry_only_for_failed_posts_and_as_a_new_attempt() -> None:
    retried = domain.retry_requested(post(State.FAILED, attempt=5, reason="x"), NOW)
    assert retried == post(State.SCHEDULED, attempt=6, due_at=NOW)
    assert isinstance(domain.retry_requested(post(State.SCHEDULED), NOW), Refusal)


def test_publisher_retry_applies_once_and_stale_news_is_ignored() -> None:
    later = NOW + timedelta(minutes=2)
    dispatched = post(State.DISPATCHED, attempt=1)
    retried = domain.retry_scheduled(dispatched, failed_attempt=1, next_attempt=2, next_at=later)
    assert retried == post(State.SCHEDULED, attempt=2, due_at=later)
    assert retried is not None
    assert domain.retry_scheduled(retried, failed_attempt=1, next_attempt=2, next_at=later) is None
    assert domain.retry_scheduled(dispatched, failed_attempt=0, next_attempt=1, next_at=later) is None


def test_a_held_post_is_released_only_by_a_reconnect_after_it_was_held() -> None:
    held = domain.held(post(State.DISPATCHED), attempt=1, reason="token expired", at=NOW)
    assert held is not None
    assert held.state is State.HELD
    assert domain.account_active(held, active_since=NOW - timedelta(minutes=1), now=NOW) is None
    future_due = replace_due(held, NOW + timedelta(hours=3))
    released = domain.account_active(future_due, active_since=NOW + timedelta(minutes=5), now=NOW)
    assert released is not None
    assert (released.state, released.attempt, released.due_at) == (State.SCHEDULED, 2, NOW + timedelta(hours=3))
    overdue = domain.account_active(held, active_since=NOW + timedelta(minutes=5), now=NOW + timedelta(minutes=6))
    assert overdue is not None
    assert overdue.due_at == NOW + timedelta(minutes=6)


def replace_due(p: Post, due: datetime) -> Post:
    return Post(**{**p.__dict__, "due_at": due})


def test_published_is_final() -> None:
    published = domain.finished(post(State.DISPATCHED), published=True, reason=None)
    assert published is not None
    assert published.state is State.PUBLISHED
    assert domain.finished(published, published=False, reason="late failure") is None
    failed = domain.finished(post(State.DISPATCHED), published=False, reason="content_rejected")
    assert failed is not None
    assert domain.finished(failed, published=True, reason=None) == post(State.PUBLISHED, reason=None)


def test_due_posts_split_into_dispatch_and_missed() -> None:
    window = timedelta(hours=48)
    fresh, stale = (
        post(post_id="fresh", due_at=NOW - timedelta(hours=1)),
        post(post_id="stale", due_at=NOW - timedelta(hours=49)),
    )
    decision = domain.decide_due([fresh, stale], NOW, window)
    assert [p.post_id for p in decision.dispatch] == ["fresh"]
    assert decision.dispatch[0].state is State.DISPATCHED
    assert [(p.post_id, p.state) for p in decision.missed] == [("stale", State.FAILED)]
    assert "misfire window" in (decision.missed[0].reason or "")
