"""The pull plan, retries, freshness and rollup arithmetic: pure rules, exact times."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from metrics.domain import (
    Freshness,
    Plan,
    PullPolicy,
    PullReason,
    Rollup,
    YieldPolicy,
    account_after_snapshot,
    after_failure,
    after_pull,
    after_rate_limit,
    backlog_since,
    check_refresh,
    first_account_plan,
    first_plan,
    freshness,
    next_daily,
    next_slot,
    nightly_offset,
    pulls_wait,
    reason_for,
)
from shared.events import Platform

PUBLISHED = datetime(2026, 11, 22, 14, 30, tzinfo=UTC)
POLICY = PullPolicy()
POST = "post-1"


def slots(policy: PullPolicy = POLICY) -> list[tuple[datetime, PullReason]]:
    found, after = [], PUBLISHED - timedelta(microseconds=1)
    while (slot := next_slot(POST, PUBLISHED, after, policy)) is not None:
        found.append((slot.at, slot.reason))
        after = slot.at
    return found


def test_first_pull_a_minute_after_publishing_then_at_24_hours() -> None:
    plan = slots()
    assert plan[0] == (PUBLISHED + timedelta(seconds=60), PullReason.FIRST)
    assert plan[1] == (PUBLISHED + timedelta(hours=24), PullReason.DAY)


def test_nightly_pulls_around_3_utc_while_the_post_is_young() -> None:
    nightly = [at for at, reason in slots() if reason is PullReason.NIGHTLY]
    offset = nightly_offset(POST, POLICY)
    assert timedelta(0) <= offset < timedelta(hours=1)
    # 24 h pull on Nov 23 at 14:30; the first nightly is the next 03:00 window, Nov 24.
    assert nightly[0] == datetime(2026, 11, 24, 3, tzinfo=UTC) + offset
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(nightly))
    assert nightly[-1] <= PUBLISHED + timedelta(days=30) < nightly[-1] + timedelta(days=1)
    assert len(slots(PullPolicy(young_for=timedelta(days=3)))) == 2 + 2  # first, day, Nov 24 and 25


def test_a_nightly_pull_too_close_to_the_day_pull_is_skipped() -> None:
    published = datetime(2026, 11, 22, 0, 30, tzinfo=UTC)  # day pull Nov 23 00:30, 03:00 is 2.5 h later
    after_day = next_slot(POST, published, published + timedelta(hours=24), POLICY)
    assert after_day is not None
    assert after_day.at.date() == datetime(2026, 11, 24).date()


def test_downtime_collapses_missed_pulls_into_one_catch_up() -> None:
    plan = first_plan(POST, PUBLISHED, POLICY)
    back_at = PUBLISHED + timedelta(days=3, hours=5)  # missed first, day and two nightly pulls
    assert reason_for(plan, back_at, POLICY) is PullReason.CATCH_UP
    following = after_pull(POST, PUBLISHED, plan, back_at, POLICY)
    assert following is not None
    assert following.reason is PullReason.NIGHTLY
    assert back_at < following.due_at < back_at + timedelta(days=1)
    on_time = PUBLISHED + timedelta(seconds=61)
    assert reason_for(plan, on_time, POLICY) is PullReason.FIRST


def test_no_pull_after_the_young_window() -> None:
    plan = Plan(PUBLISHED + timedelta(days=30), PUBLISHED + timedelta(days=30), PullReason.NIGHTLY)
    assert after_pull(POST, PUBLISHED, plan, PUBLISHED + timedelta(days=30, hours=1), POLICY) is None


def test_failures_back_off_then_give_up_to_the_next_slot() -> None:
    now = PUBLISHED + timedelta(seconds=60)
    plan = first_plan(POST, PUBLISHED, POLICY)
    delays = []
    for _ in range(POLICY.max_tries - 1):
        next_plan, gave_up = after_failure(POST, PUBLISHED, plan, now, POLICY)
        assert next_plan is not None
        assert not gave_up
        delays.append(next_plan.due_at - now)
        plan = next_plan
    assert delays == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    final, gave_up = after_failure(POST, PUBLISHED, plan, now, POLICY)
    assert gave_up
    assert final is not None
    assert final.reason is PullReason.DAY
    assert final.tries == 0


def test_a_rate_limited_pull_waits_for_the_reset_and_keeps_its_slot() -> None:
    plan = first_plan(POST, PUBLISHED, POLICY)
    now = plan.due_at
    reset = now + timedelta(minutes=7)
    assert after_rate_limit(plan, now, reset, POLICY) == Plan(reset, plan.slot_at, PullReason.FIRST)
    assert after_rate_limit(plan, now, None, POLICY).due_at == now + POLICY.rate_limit_backoff


def test_freshness() -> None:
    now = PUBLISHED + timedelta(hours=30)
    stale_after = timedelta(hours=26)
    assert freshness(None, now, stale_after) == (Freshness.NEVER, None)
    assert freshness(now - timedelta(hours=1), now, stale_after) == (Freshness.FRESH, 3600.0)
    assert freshness(now - timedelta(hours=27), now, stale_after)[0] is Freshness.STALE


def test_refresh_is_refused_when_too_soon_or_unsupported() -> None:
    now = PUBLISHED
    minute = timedelta(minutes=5)
    assert check_refresh(platform=Platform.X, last_refresh_at=None, now=now, min_interval=minute) is None
    too_soon = check_refresh(
        platform=Platform.X, last_refresh_at=now - timedelta(minutes=1), now=now, min_interval=minute
    )
    assert too_soon is not None
    assert too_soon.retry_at == now + timedelta(minutes=4)
    assert check_refresh(platform=Platform.TELEGRAM, last_refresh_at=None, now=now, min_interval=minute)


def test_rollup_sums_present_values_and_counts_them() -> None:
    rollup = Rollup("spring")
    rollup.add({"views": 10, "likes": None})
    rollup.add({"views": 5, "likes": 3})
    rollup.add(None)
    assert (rollup.posts, rollup.posts_with_metrics) == (3, 2)
    assert rollup.sums["views"] == 15
    assert rollup.with_value["views"] == 2
    assert (rollup.sums["likes"], rollup.with_value["likes"]) == (3, 1)
    assert (rollup.sums["reach"], rollup.with_value["reach"]) == (0, 0)


def test_account_snapshots_run_daily_at_a_stable_per_account_time() -> None:
    account = "acct-1"
    first = first_account_plan(PUBLISHED)
    assert (first.due_at, first.reason) == (PUBLISHED, PullReason.FIRST)
    following = account_after_snapshot(account, first, PUBLISHED, POLICY)
    # 14:30 on Nov 22: the next daily slot is 02:00 UTC on Nov 23 plus the account's offset.
    offset = following.due_at - datetime(2026, 11, 23, 2, tzinfo=UTC)
    assert timedelta(0) <= offset < POLICY.account_spread
    assert following.reason is PullReason.DAILY
    after = account_after_snapshot(account, following, following.due_at, POLICY)
    assert after.due_at - following.due_at == timedelta(days=1)
    assert next_daily("acct-2", PUBLISHED, POLICY) != following.due_at  # accounts do not all call at once


def test_account_downtime_is_one_catch_up_snapshot() -> None:
    plan = account_after_snapshot("acct-1", first_account_plan(PUBLISHED), PUBLISHED, POLICY)
    back_at = plan.due_at + timedelta(days=3, hours=1)
    assert reason_for(plan, back_at, POLICY) is PullReason.CATCH_UP
    following = account_after_snapshot("acct-1", plan, back_at, POLICY)
    assert back_at < following.due_at < back_at + timedelta(days=1)


def test_pulls_wait_while_the_publishing_backlog_is_over_the_limit_for_a_bounded_time() -> None:
    policy = YieldPolicy(backlog=100, at_most=timedelta(minutes=10))
    t0 = PUBLISHED
    since = backlog_since(101, None, t0, policy)
    assert since == t0
    assert pulls_wait(since, t0, policy)
    # Still over the limit later: the wait keeps its start and ends after `at_most`.
    later = t0 + timedelta(minutes=9)
    assert backlog_since(50_000, since, later, policy) == t0
    assert pulls_wait(t0, later, policy)
    assert not pulls_wait(t0, t0 + timedelta(minutes=10), policy)
    # At or under the limit, or unknown, nothing waits and the next wait starts afresh.
    assert backlog_since(100, since, later, policy) is None
    assert backlog_since(None, since, later, policy) is None
    assert not pulls_wait(None, later, policy)
    assert backlog_since(101, None, later, policy) == later


def test_a_zero_backlog_limit_never_makes_pulls_wait() -> None:
    assert backlog_since(10**9, None, PUBLISHED, YieldPolicy(backlog=0)) is None
