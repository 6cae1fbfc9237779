"""Each post's attempt history, projected from the post events with in-memory adapters: one entry
per attempt, redeliveries and late events included, and the board's failure reason taken from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from approval import domain, handlers
from approval.domain import AttemptOutcome, NotFound, PostStatus
from approval.handlers import Ports, Principal
from shared.events import (
    ErrorCode,
    Event,
    Platform,
    PostFailed,
    PostFormat,
    PostHeld,
    PostPublished,
    PostRetryScheduled,
    PostScheduled,
)
from tests.approval.fakes import fake_ports
from tests.approval.test_handlers import workspace

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
GRAPH_ERROR = {"status": 500, "error": {"message": "An unexpected error has occurred.", "code": 2, "fbtrace_id": "A"}}


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def common(workspace_id: str = "ws", post_id: str = "p1") -> dict[str, Any]:
    return {
        "producer": "publisher",
        "workspace_id": workspace_id,
        "correlation_id": "a1",
        "post_id": post_id,
        "asset_id": "a1",
        "platform": Platform.INSTAGRAM,
        "account_id": "acc",
    }


def retry(attempt: int, message: str, *, code: ErrorCode = ErrorCode.NETWORK_ERROR, **env: Any) -> PostRetryScheduled:
    return PostRetryScheduled(
        **common(**env),
        error_code=code,
        error_message=message,
        attempt=attempt,
        next_attempt=attempt + 1,
        next_attempt_at=at(attempt * 10 + 5),
        platform_error=GRAPH_ERROR if code is not ErrorCode.RATE_LIMITED else None,
        occurred_at=at(attempt * 10),
    )


def published(attempt: int, **env: Any) -> PostPublished:
    return PostPublished(
        **common(**env),
        remote_id="r1",
        permalink="https://instagram.example/p/r1",
        published_at=at(attempt * 10),
        attempt=attempt,
        occurred_at=at(attempt * 10),
    )


@pytest.mark.parametrize(
    ("event", "outcome", "attempt"),
    [
        (retry(1, "502"), AttemptOutcome.RETRY_SCHEDULED, 1),
        (retry(2, "budget used up", code=ErrorCode.RATE_LIMITED), AttemptOutcome.DEFERRED, 2),
        (
            PostHeld(**common(), error_code=ErrorCode.ACCOUNT_INACTIVE, reason="reconnect", attempt=3),
            AttemptOutcome.HELD,
            3,
        ),
        (
            PostFailed(**common(), error_code=ErrorCode.CONTENT_REJECTED, error_message="aspect", attempts=4),
            AttemptOutcome.FAILED,
            4,
        ),
        (
            PostFailed(**common(), error_code=ErrorCode.PUBLISH_UNCONFIRMED, error_message="check", attempts=2),
            AttemptOutcome.UNCONFIRMED,
            2,
        ),
        (published(5), AttemptOutcome.PUBLISHED, 5),
    ],
)
def test_every_attempt_event_is_one_entry_with_its_outcome(event: Event, outcome: AttemptOutcome, attempt: int) -> None:
    entry = domain.attempt_entry(event)
    assert entry is not None
    assert (entry.outcome, entry.attempt, entry.event_id) == (outcome, attempt, str(event.event_id))


def test_events_that_are_not_attempts_have_no_entry() -> None:
    scheduled = PostScheduled(**common(), target_id="t1", format=PostFormat.REEL, due_at=at(0))
    assert domain.attempt_entry(scheduled) is None


async def project(ports: Ports, events: list[Event]) -> None:
    await handlers.apply_post_events(ports, events)


async def test_two_failures_then_published_list_three_attempts_with_their_errors_once() -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    events: list[Event] = [
        retry(1, "An unexpected error has occurred.", workspace_id=admin.workspace_id),
        retry(2, "Service temporarily unavailable", workspace_id=admin.workspace_id),
        published(3, workspace_id=admin.workspace_id),
    ]
    await project(ports, [*events, *events])  # Kafka redelivers
    history = await handlers.post_attempts(ports, admin, "p1")
    assert [(e.attempt, e.outcome, e.error_code, e.message) for e in history] == [
        (1, AttemptOutcome.RETRY_SCHEDULED, ErrorCode.NETWORK_ERROR, "An unexpected error has occurred."),
        (2, AttemptOutcome.RETRY_SCHEDULED, ErrorCode.NETWORK_ERROR, "Service temporarily unavailable"),
        (3, AttemptOutcome.PUBLISHED, None, None),
    ]
    assert history[0].platform_error == GRAPH_ERROR
    assert history[2].permalink == "https://instagram.example/p/r1"


async def test_a_late_attempt_event_is_kept_in_the_history_though_the_board_ignores_it() -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    late = retry(1, "timeout", workspace_id=admin.workspace_id)
    await project(ports, [published(2, workspace_id=admin.workspace_id)])
    board = await ports.posts.get_any("p1")
    await handlers.apply_post_events(ports, [late])
    assert await ports.posts.get_any("p1") == board  # the board does not move back
    history = await handlers.post_attempts(ports, admin, "p1")
    assert [(e.attempt, e.outcome) for e in history] == [
        (1, AttemptOutcome.RETRY_SCHEDULED),
        (2, AttemptOutcome.PUBLISHED),
    ]


async def latest_failure_shown(ports: Ports, admin: Principal) -> tuple[Any, ...]:
    post = await handlers.get_post(ports, admin, "p1")
    last = (await handlers.post_attempts(ports, admin, "p1"))[-1]
    assert (post.error_code, post.error_message, post.platform_error) == (
        last.error_code,
        last.message,
        last.platform_error,
    )
    return post.status, post.error_code, post.error_message


async def test_the_board_shows_the_latest_attempts_failure_from_the_history() -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    ws = admin.workspace_id
    await project(ports, [retry(1, "An unexpected error has occurred.", workspace_id=ws)])
    assert await latest_failure_shown(ports, admin) == (
        PostStatus.RETRYING,
        ErrorCode.NETWORK_ERROR,
        "An unexpected error has occurred.",
    )
    reason = "reconnect with publishing permission: missing scope instagram_content_publish"
    held = PostHeld(**common(ws), error_code=ErrorCode.ACCOUNT_INACTIVE, reason=reason, attempt=2, occurred_at=at(20))
    # A hold replaces the earlier attempt's error and raw payload: the board never mixes attempts.
    await project(ports, [held])
    assert await latest_failure_shown(ports, admin) == (PostStatus.HELD, ErrorCode.ACCOUNT_INACTIVE, reason)
    assert (await handlers.get_post(ports, admin, "p1")).platform_error is None
    failed = PostFailed(
        **common(ws),
        error_code=ErrorCode.CONTENT_REJECTED,
        error_message="The aspect ratio is not supported.",
        platform_error={"status": 400, "error": {"error_user_msg": "The aspect ratio is not supported."}},
        attempts=3,
        occurred_at=at(30),
    )
    await project(ports, [failed])
    assert await latest_failure_shown(ports, admin) == (
        PostStatus.FAILED,
        ErrorCode.CONTENT_REJECTED,
        "The aspect ratio is not supported.",
    )


async def test_another_workspace_cannot_read_a_posts_attempts() -> None:
    ports = fake_ports()
    owner = await workspace(ports)
    other = await workspace(ports)
    await project(ports, [retry(1, "502", workspace_id=owner.workspace_id)])
    assert len(await handlers.post_attempts(ports, owner, "p1")) == 1
    with pytest.raises(NotFound):
        await handlers.post_attempts(ports, other, "p1")
    # An event naming the post under another workspace adds nothing to its history.
    await project(ports, [retry(2, "forged", workspace_id=other.workspace_id)])
    assert len(await handlers.post_attempts(ports, owner, "p1")) == 1
