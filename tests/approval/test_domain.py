"""Pure rules: state machine, validation against platform limits, time zones, the post read model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approval import domain
from approval.domain import (
    AccountFacts,
    AggregateStatus,
    AssetAction,
    AssetState,
    Conflict,
    InvalidContent,
    PostStatus,
    PostView,
    TargetSpec,
)
from shared.events import (
    AccountStatus,
    ErrorCode,
    Event,
    MediaRef,
    Platform,
    PostCancelled,
    PostFailed,
    PostFormat,
    PostHeld,
    PostPublished,
    PostRetryScheduled,
    PostScheduled,
    Schedule,
)

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ENV: dict[str, Any] = {"producer": "tests", "workspace_id": "ws", "correlation_id": "a1"}
POST: dict[str, Any] = {"post_id": "p1", "asset_id": "a1", "platform": Platform.INSTAGRAM, "account_id": "acc"}
VIDEO = MediaRef(url="https://cdn.example/v.mp4", type="video", duration_seconds=20)


def accounts(platform: Platform) -> dict[str, AccountFacts]:
    return {"acc": AccountFacts("acc", platform, "Europe/Berlin", AccountStatus.ACTIVE)}


def target(fmt: PostFormat, **kw: object) -> TargetSpec:
    return TargetSpec.model_validate({"target_id": "t1", "account_id": "acc", "format": fmt, **kw})


def test_state_machine_allows_only_the_listed_transitions() -> None:
    assert domain.transition(AssetState.PENDING_APPROVAL, AssetAction.APPROVE) is AssetState.APPROVED
    assert (
        domain.transition(AssetState.REGENERATION_REQUESTED, AssetAction.SUBMIT_VERSION) is AssetState.PENDING_APPROVAL
    )
    for final in (AssetState.REJECTED, AssetState.DISCARDED, AssetState.APPROVED):
        for action in AssetAction:
            with pytest.raises(Conflict) as info:
                domain.transition(final, action)
            assert info.value.code == "invalid_transition"


def test_a_format_the_channel_does_not_offer_is_named_with_target_and_rule() -> None:
    problems = domain.validate_target(target(PostFormat.STORY), Platform.X, caption="hi", media=[])
    assert [(p.rule, p.target_id) for p in problems] == [("format_unsupported", "t1")]
    assert "t1" in problems[0].message
    assert "x" in problems[0].message


@pytest.mark.parametrize(
    ("platform", "fmt", "caption", "media", "rule"),
    [
        (Platform.X, PostFormat.POST, "x" * 281, [], "caption_too_long"),
        (Platform.THREADS, PostFormat.POST, "x" * 501, [], "caption_too_long"),
        (Platform.INSTAGRAM, PostFormat.REEL, " ".join(f"#t{i}" for i in range(31)), [VIDEO], "too_many_hashtags"),
        (
            Platform.TELEGRAM,
            PostFormat.POST,
            "x" * 1025,
            [MediaRef(url="https://cdn.example/i.jpg", type="image")],
            "caption_too_long",
        ),
        (Platform.INSTAGRAM, PostFormat.REEL, "", [], "media_count"),
        (
            Platform.INSTAGRAM,
            PostFormat.REEL,
            "",
            [MediaRef(url="https://cdn.example/v.mp4", type="video", duration_seconds=2)],
            "video_duration",
        ),
        (
            Platform.INSTAGRAM,
            PostFormat.CAROUSEL,
            "",
            [MediaRef(url=f"https://cdn.example/{i}.jpg", type="image", width=1000, height=2000) for i in range(2)],
            "aspect_ratio",
        ),
        (
            Platform.X,
            PostFormat.POST,
            "",
            [MediaRef(url="https://cdn.example/i.jpg", type="image", size_bytes=6 * 1024 * 1024)],
            "image_too_large",
        ),
        (Platform.PINTEREST, PostFormat.POST, "pin", [], "media_required"),
    ],
)
def test_platform_limits(platform: Platform, fmt: PostFormat, caption: str, media: list[MediaRef], rule: str) -> None:
    problems = domain.validate_target(target(fmt), platform, caption=caption, media=media)
    assert rule in {p.rule for p in problems}
    assert all(p.target_id == "t1" for p in problems)


def test_a_valid_reel_passes_and_caption_override_is_checked_instead_of_the_caption() -> None:
    assert domain.validate_target(target(PostFormat.REEL), Platform.INSTAGRAM, caption="ok", media=[VIDEO]) == []
    long_caption_short_override = target(PostFormat.POST, caption="short")
    assert domain.validate_target(long_caption_short_override, Platform.X, caption="x" * 500, media=[]) == []


def test_unknown_account_and_bad_timezone_are_violations() -> None:
    problems = domain.validate_asset(
        caption="",
        media=[VIDEO],
        targets=[target(PostFormat.REEL)],
        schedule=Schedule(local_time=datetime(2026, 1, 1, 9), timezone="Mars/Olympus"),
        accounts={},
    )
    assert {p.rule for p in problems} == {"unknown_account", "invalid_timezone"}


def test_deselecting_everything_is_nothing_in_scope() -> None:
    with pytest.raises(InvalidContent) as info:
        domain.select_targets([target(PostFormat.POST)], ["t1"])
    assert info.value.code == "nothing_in_scope"
    with pytest.raises(InvalidContent):
        domain.select_targets([target(PostFormat.POST)], ["nope"])


def test_local_times_at_dst_changes() -> None:
    berlin = "Europe/Berlin"
    # 2026-03-29 02:30 does not exist in Berlin: moves forward past the gap (03:30 CEST = 01:30 UTC).
    gap = domain.resolve_due_at(Schedule(local_time=datetime(2026, 3, 29, 2, 30)), berlin, T0)
    assert gap == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    # 2026-10-25 02:30 happens twice: the first occurrence (CEST, 00:30 UTC).
    twice = domain.resolve_due_at(Schedule(local_time=datetime(2026, 10, 25, 2, 30)), berlin, T0)
    assert twice == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    explicit = Schedule(local_time=datetime(2026, 7, 1, 9, 0), timezone="America/New_York")
    assert domain.resolve_due_at(explicit, berlin, T0) == datetime(2026, 7, 1, 13, 0, tzinfo=UTC)
    assert domain.resolve_due_at(Schedule(publish_now=True), berlin, T0) == T0


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def lifecycle() -> list[Event]:
    """Scheduled, rate-limited, retry after a network error, held, then published on attempt 3."""
    return [
        PostScheduled(**ENV, **POST, target_id="t1", format=PostFormat.REEL, due_at=at(10), occurred_at=at(0)),
        PostRetryScheduled(
            **ENV,
            **POST,
            error_code=ErrorCode.RATE_LIMITED,
            error_message="quota",
            attempt=1,
            next_attempt=2,
            next_attempt_at=at(60),
            occurred_at=at(10),
        ),
        PostRetryScheduled(
            **ENV,
            **POST,
            error_code=ErrorCode.NETWORK_ERROR,
            error_message="502",
            attempt=2,
            next_attempt=3,
            next_attempt_at=at(70),
            occurred_at=at(60),
        ),
        PostHeld(**ENV, **POST, error_code=ErrorCode.TOKEN_EXPIRED, reason="reconnect", attempt=3, occurred_at=at(70)),
        PostPublished(
            **ENV,
            **POST,
            remote_id="r1",
            permalink="https://x.example/r1",
            published_at=at(90),
            attempt=3,
            occurred_at=at(90),
        ),
    ]


def fold(events: list[Event]) -> PostView:
    post = PostView(workspace_id="ws", post_id="p1", asset_id="a1", account_id="acc", platform=Platform.INSTAGRAM)
    for event in events:
        post = domain.apply_post_event(post, event) or post
    return post


def test_in_order_lifecycle_ends_published_with_link() -> None:
    statuses = []
    post = PostView(workspace_id="ws", post_id="p1", asset_id="a1", account_id="acc", platform=Platform.INSTAGRAM)
    for event in lifecycle():
        post = domain.apply_post_event(post, event) or post
        statuses.append(post.status)
    assert statuses == [
        PostStatus.SCHEDULED,
        PostStatus.QUEUED,
        PostStatus.RETRYING,
        PostStatus.HELD,
        PostStatus.PUBLISHED,
    ]
    assert post.permalink == "https://x.example/r1"


def test_late_scheduled_after_published_changes_nothing() -> None:
    events = lifecycle()
    published = fold(events)
    assert domain.apply_post_event(published, events[0]) is None
    assert domain.apply_post_event(published, PostCancelled(**ENV, **POST, occurred_at=at(100))) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(range(5)), min_size=5, max_size=15).filter(lambda xs: set(xs) == set(range(5))))
def test_any_order_with_duplicates_ends_in_the_same_state(order: list[int]) -> None:
    events = lifecycle()
    final = fold([events[i] for i in order])
    assert final.status is PostStatus.PUBLISHED
    assert final.attempt == 3
    assert final.remote_id == "r1"


def test_failure_then_manual_retry_attempt_publishes() -> None:
    failed = fold(
        [
            PostFailed(
                **ENV,
                **POST,
                error_code=ErrorCode.PUBLISH_UNCONFIRMED,
                error_message="timeout",
                attempts=2,
                occurred_at=at(5),
            ),
        ]
    )
    assert failed.status is PostStatus.UNCONFIRMED
    late_retry = PostRetryScheduled(
        **ENV,
        **POST,
        error_code=ErrorCode.NETWORK_ERROR,
        error_message="x",
        attempt=1,
        next_attempt=2,
        next_attempt_at=at(1),
        occurred_at=at(1),
    )
    assert domain.apply_post_event(failed, late_retry) is None
    retried = domain.apply_post_event(
        failed, PostPublished(**ENV, **POST, remote_id="r", published_at=at(9), attempt=3, occurred_at=at(9))
    )
    assert retried is not None
    assert retried.status is PostStatus.PUBLISHED


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([PostStatus.PUBLISHED, PostStatus.PUBLISHED], AggregateStatus.PUBLISHED),
        ([PostStatus.PUBLISHED, PostStatus.FAILED], AggregateStatus.PARTIALLY_PUBLISHED),
        ([PostStatus.FAILED, PostStatus.MISSED], AggregateStatus.FAILED),
        ([PostStatus.SCHEDULED, PostStatus.PENDING], AggregateStatus.SCHEDULED),
        ([PostStatus.SCHEDULED, PostStatus.PUBLISHED], AggregateStatus.PUBLISHING),
        ([PostStatus.HELD, PostStatus.SCHEDULED], AggregateStatus.HELD),
        ([PostStatus.CANCELLED], AggregateStatus.CANCELLED),
        ([], None),
    ],
)
def test_aggregate_status(statuses: list[PostStatus], expected: AggregateStatus | None) -> None:
    assert domain.aggregate_status(statuses) == expected


@given(
    others=st.lists(st.sampled_from(PostStatus), max_size=3),
    before=st.sampled_from(PostStatus),
    after=st.sampled_from(PostStatus),
)
def test_a_move_the_aggregate_does_not_tell_apart_leaves_it_as_it_was(
    others: list[PostStatus], before: PostStatus, after: PostStatus
) -> None:
    # The read model skips writing such moves to the asset, so they must never change its status
    # or whether it has posts in flight.
    if domain.aggregate_tells_apart(before, after):
        return
    assert domain.aggregate_status([*others, before]) == domain.aggregate_status([*others, after])
    assert (before in domain.TERMINAL) == (after in domain.TERMINAL)


def test_aggregate_tells_apart_a_post_that_starts_publishing() -> None:
    assert domain.aggregate_tells_apart(PostStatus.SCHEDULED, PostStatus.QUEUED)
    assert not domain.aggregate_tells_apart(PostStatus.PENDING, PostStatus.SCHEDULED)


def test_a_due_scheduled_post_shows_as_publishing() -> None:
    post = fold(lifecycle()[:1])
    assert domain.effective_status(post, at(5)) is PostStatus.SCHEDULED
    assert domain.effective_status(post, at(11)) is PostStatus.PUBLISHING


def test_a_released_hold_shows_as_scheduled_again() -> None:
    held = fold(
        [
            PostScheduled(**ENV, **POST, target_id="t1", format=PostFormat.REEL, due_at=at(10), occurred_at=at(0)),
            PostHeld(
                **ENV, **POST, error_code=ErrorCode.TOKEN_EXPIRED, reason="reconnect", attempt=1, occurred_at=at(10)
            ),
        ]
    )
    assert held.status is PostStatus.HELD
    release = PostScheduled(
        **ENV, **POST, target_id="t1", format=PostFormat.REEL, due_at=at(30), attempt=2, occurred_at=at(20)
    )
    released = domain.apply_post_event(held, release)
    assert released is not None
    assert (released.status, released.attempt) == (PostStatus.SCHEDULED, 2)
    stale = PostScheduled(**ENV, **POST, target_id="t1", format=PostFormat.REEL, due_at=at(10), occurred_at=at(25))
    assert domain.apply_post_event(released, stale) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"$where": 1}, "not allowed"),
        ({"a.b": 1}, "not allowed"),
        ({"tags": [["x"]]}, "may not directly contain a list"),
        ({"deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}}, "nested too deeply"),
    ],
)
def test_free_form_options_must_be_storable(value: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        domain.storable_mapping(value)
    assert domain.storable_mapping({"tags": [{"names": ["x"]}], "n": 1}) == {"tags": [{"names": ["x"]}], "n": 1}
