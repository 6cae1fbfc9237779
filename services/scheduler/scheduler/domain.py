"""Pure rules of the scheduler: due times and time zones, the post state machine, and what a
person's commands may change. No I/O and no clock reads: `now` is always an argument."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.events import Schedule


class InvalidSchedule(ValueError):
    """A schedule that cannot be turned into an instant (unknown zone, missing zone)."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f"unknown IANA timezone {name!r}") from None


def local_to_utc(wall: datetime, zone_name: str) -> datetime:
    """The UTC instant of a wall-clock time in a zone.

    At DST changes: a wall time that does not exist (inside the spring-forward gap) moves
    forward by the length of the gap (02:30 in a 02:00->03:00 gap becomes 03:30); a wall time
    that happens twice (fall back) takes the first occurrence. Python's fold=0 is exactly that.
    """
    return wall.replace(tzinfo=zone(zone_name), fold=0).astimezone(UTC)


def due_at(schedule: Schedule, *, account_timezone: str | None, now: datetime) -> datetime:
    """When a post with this schedule falls due, in UTC. Publish-now is due at `now`."""
    if schedule.publish_now:
        return now
    if schedule.at_utc is not None:
        return schedule.at_utc.astimezone(UTC)
    assert schedule.local_time is not None  # the Schedule model guarantees exactly one kind
    zone_name = schedule.timezone or account_timezone
    if not zone_name:
        raise InvalidSchedule("a local time needs a timezone: none was given and the account has none")
    return local_to_utc(schedule.local_time, zone_name)


def is_missed(due: datetime, now: datetime, misfire_window: timedelta) -> bool:
    """Overdue beyond the misfire window (the system was down): fail it rather than post stale."""
    return now - due > misfire_window


class State(StrEnum):
    SCHEDULED = "scheduled"  # waiting for due_at (first attempt, a retry, or a released hold)
    DISPATCHED = "dispatched"  # PostDue emitted: the publisher has this attempt
    HELD = "held"  # waiting for the account to be reconnected or reviewed
    PUBLISHED = "published"
    FAILED = "failed"  # includes missed and publish_unconfirmed (a person may retry)
    CANCELLED = "cancelled"


TERMINAL = frozenset({State.PUBLISHED, State.FAILED, State.CANCELLED})
WAITING = frozenset({State.SCHEDULED, State.HELD})


@dataclass(frozen=True)
class Post:
    """The scheduler's view of one post. `content` is the PostScheduled payload (no secrets)."""

    post_id: str
    partition: int
    account_id: str
    state: State
    due_at: datetime
    attempt: int
    content: dict[str, object] = field(compare=False, repr=False)
    held_at: datetime | None = None
    reason: str | None = None
    # event_id of the last command applied, so a redelivered command repeats its outcome.
    last_command: str | None = None


@dataclass(frozen=True)
class Refusal:
    reason: str


Outcome = Post | Refusal


def cancel(post: Post) -> Outcome:
    if post.state in WAITING:
        return replace(post, state=State.CANCELLED, reason="cancelled on request")
    return Refusal(_too_late(post, "cancelled"))


def reschedule(post: Post, new_due: datetime) -> Outcome:
    """A waiting post moves to its new time; a held one stays held until its account is back."""
    if post.state in WAITING:
        return replace(post, due_at=new_due)
    return Refusal(_too_late(post, "rescheduled"))


def retry_requested(post: Post, now: datetime) -> Outcome:
    """A person decided to try a failed or unconfirmed post again: a new attempt, due now."""
    if post.state is State.FAILED:
        return replace(post, state=State.SCHEDULED, attempt=post.attempt + 1, due_at=now, reason=None)
    return Refusal(f"only a failed or unconfirmed post can be retried; this one is {post.state.value}")


def retry_scheduled(post: Post, *, failed_attempt: int, next_attempt: int, next_at: datetime) -> Post | None:
    """The publisher deferred an attempt (retryable error or rate limit). Stale news is ignored."""
    if post.state is not State.DISPATCHED or failed_attempt != post.attempt or next_attempt <= post.attempt:
        return None
    return replace(post, state=State.SCHEDULED, attempt=next_attempt, due_at=next_at)


def held(post: Post, *, attempt: int, reason: str, at: datetime) -> Post | None:
    if post.state is not State.DISPATCHED or attempt != post.attempt:
        return None
    return replace(post, state=State.HELD, held_at=at, reason=reason)


def account_active(post: Post, *, active_since: datetime, now: datetime) -> Post | None:
    """Release a post held before its account became active again: a new attempt, due at its
    original time if that is still ahead, else now."""
    if post.state is not State.HELD or post.held_at is None or post.held_at > active_since:
        return None
    return replace(post, state=State.SCHEDULED, attempt=post.attempt + 1, due_at=max(post.due_at, now), reason=None)


def finished(post: Post, *, published: bool, reason: str | None) -> Post | None:
    """The publisher's final word. A published post never becomes failed afterwards."""
    if post.state is State.PUBLISHED or (post.state in TERMINAL and not published):
        return None
    return replace(post, state=State.PUBLISHED if published else State.FAILED, reason=reason)


@dataclass(frozen=True)
class DueDecision:
    dispatch: Sequence[Post]
    missed: Sequence[Post]


def decide_due(posts: Sequence[Post], now: datetime, misfire_window: timedelta) -> DueDecision:
    """Split due posts into those to hand to the publisher and those overdue beyond the window."""
    dispatch = [replace(p, state=State.DISPATCHED) for p in posts if not is_missed(p.due_at, now, misfire_window)]
    missed = [
        replace(p, state=State.FAILED, reason=f"missed: due {p.due_at.isoformat()}, overdue beyond the misfire window")
        for p in posts
        if is_missed(p.due_at, now, misfire_window)
    ]
    return DueDecision(dispatch, missed)


def _too_late(post: Post, verb: str) -> str:
    if post.state is State.DISPATCHED:
        return f"cannot be {verb}: attempt {post.attempt} is already with the publisher"
    return f"cannot be {verb}: the post is already {post.state.value}"
