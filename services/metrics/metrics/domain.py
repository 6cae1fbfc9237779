"""Pure rules of the metrics service: no I/O, no clock reads (time comes in as an argument).

- The pull plan of a post: a first pull about a minute after publishing, one at 24 h, then one
  each night (03:00 UTC, spread over an hour per post) while the post is young. A pull that runs
  late because the service was down is one catch-up pull, never one pull per missed slot.
- Retries: a failed pull backs off exponentially; a rate-limited pull waits for the platform's
  reset; neither is ever dropped.
- Canonical metrics: None means the platform gave no value, never zero.
- Freshness of what a reader sees.
- The daily snapshot of an account (followers and what else the platform offers per account),
  planned like post pulls: one catch-up after downtime, never one per missed day.
- Publishing first: planned pulls wait while the publishers have a backlog of due posts, for a
  bounded time, because a late post costs more than a late insight.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any

from shared.events import CanonicalMetrics, Platform

METRIC_NAMES: tuple[str, ...] = tuple(CanonicalMetrics.model_fields)


@dataclass(frozen=True)
class AccountMetrics:
    """What an account's daily snapshot holds, mapped from each platform's names. None means the
    platform gave no value, never zero. `likes` are likes received (page likes on Facebook);
    `reach` is the account's reach over the last day."""

    followers: int | None = None
    posts: int | None = None
    views: int | None = None
    likes: int | None = None
    reach: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        return asdict(self)


class PullReason(StrEnum):
    FIRST = "first"
    DAY = "day"
    NIGHTLY = "nightly"
    REFRESH = "refresh"
    CATCH_UP = "catch_up"
    DAILY = "daily"  # an account's daily snapshot


class PullStatus(StrEnum):
    """What the last pull of a post found (shown to readers next to the values)."""

    PENDING = "pending"  # nothing pulled yet
    OK = "ok"
    NOT_ENOUGH_DATA = "not_enough_data"  # e.g. IG "(#10) Not enough viewers": no value, not zero
    TOO_OLD = "too_old"  # the platform no longer reports insights for a post this old
    RATE_LIMITED = "rate_limited"  # waiting for the platform's reset; the pull is kept
    RETRYING = "retrying"  # a transient error; the pull is tried again
    FAILED = "failed"  # tries exhausted for this pull; the next planned pull still runs
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - a status name, not a secret
    NO_CREDENTIALS = "no_credentials"
    DELETED = "deleted"  # the platform says the post is gone: no more pulls
    UNSUPPORTED = "unsupported"  # the platform has no post metrics (Telegram)


# Platforms with no post insights at all: marked unsupported, never an error.
UNSUPPORTED_PLATFORMS = frozenset({Platform.TELEGRAM})


@dataclass(frozen=True)
class PullPolicy:
    first_after: timedelta = timedelta(seconds=60)
    day_after: timedelta = timedelta(hours=24)
    nightly_hour_utc: int = 3
    nightly_spread: timedelta = timedelta(hours=1)
    nightly_min_gap: timedelta = timedelta(hours=6)
    young_for: timedelta = timedelta(days=30)
    catch_up_after: timedelta = timedelta(minutes=15)
    retry_base: timedelta = timedelta(seconds=60)
    retry_max: timedelta = timedelta(hours=1)
    max_tries: int = 5
    rate_limit_backoff: timedelta = timedelta(minutes=15)
    account_hour_utc: int = 2
    account_spread: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Slot:
    at: datetime
    reason: PullReason


def _offset(key: str, spread: timedelta) -> timedelta:
    seconds = int(spread.total_seconds())
    return timedelta(seconds=zlib.crc32(key.encode()) % seconds) if seconds > 0 else timedelta(0)


def nightly_offset(spread_key: str, policy: PullPolicy) -> timedelta:
    """A stable offset into the nightly window, so 03:00 is not one burst of calls. The key is the
    post id, or the account id where one call pulls many posts, so an account's posts fall due
    together and go out in one call."""
    return _offset(spread_key, policy.nightly_spread)


def next_slot(spread_key: str, published_at: datetime, after: datetime, policy: PullPolicy) -> Slot | None:
    """The first planned pull strictly after `after`, or None when the post is no longer young."""
    first = Slot(published_at + policy.first_after, PullReason.FIRST)
    day = Slot(published_at + policy.day_after, PullReason.DAY)
    for slot in (first, day):
        if slot.at > after:
            return slot
    end = published_at + policy.young_for
    earliest = max(day.at + policy.nightly_min_gap, after)
    offset = nightly_offset(spread_key, policy)
    night = datetime.combine(earliest.date(), time(policy.nightly_hour_utc), earliest.tzinfo) + offset
    while night <= earliest or night < day.at + policy.nightly_min_gap:
        night += timedelta(days=1)
    return Slot(night, PullReason.NIGHTLY) if night <= end else None


@dataclass(frozen=True)
class Plan:
    """The next automatic pull of one post. `slot_at` is when it was planned for; `due_at` is when
    it will run (later after failures or a rate limit)."""

    due_at: datetime
    slot_at: datetime
    reason: PullReason
    tries: int = 0


def first_plan(spread_key: str, published_at: datetime, policy: PullPolicy) -> Plan:
    slot = next_slot(spread_key, published_at, published_at - timedelta(microseconds=1), policy)
    assert slot is not None  # the first pull always exists
    return Plan(slot.at, slot.at, slot.reason)


def reason_for(plan: Plan, now: datetime, policy: PullPolicy) -> PullReason:
    """The reason recorded with a pull: its own, or catch_up when it runs well after its slot."""
    return PullReason.CATCH_UP if now - plan.slot_at > policy.catch_up_after else plan.reason


def after_pull(spread_key: str, published_at: datetime, plan: Plan, now: datetime, policy: PullPolicy) -> Plan | None:
    """The plan once a pull has run (or been given up): the next slot after both the one just
    served and now, so slots missed during downtime collapse into the pull that just ran."""
    slot = next_slot(spread_key, published_at, max(plan.slot_at, now), policy)
    return None if slot is None else Plan(slot.at, slot.at, slot.reason)


def backoff(plan: Plan, now: datetime, policy: PullPolicy) -> Plan | None:
    """The same pull, tried again after an exponential backoff; None once it has used its tries."""
    tries = plan.tries + 1
    if tries >= policy.max_tries:
        return None
    delay = min(policy.retry_base * (2 ** (tries - 1)), policy.retry_max)
    return replace(plan, due_at=now + delay, tries=tries)


def after_failure(
    spread_key: str, published_at: datetime, plan: Plan, now: datetime, policy: PullPolicy
) -> tuple[Plan | None, bool]:
    """Back off and try again, or give this pull up after max_tries. Returns (plan, gave_up)."""
    retried = backoff(plan, now, policy)
    if retried is None:
        return after_pull(spread_key, published_at, plan, now, policy), True
    return retried, False


def after_rate_limit(plan: Plan, now: datetime, retry_at: datetime | None, policy: PullPolicy) -> Plan:
    """Wait for the platform's reset (or a default backoff); the pull is kept, never dropped."""
    at = retry_at if retry_at is not None and retry_at > now else now + policy.rate_limit_backoff
    return replace(plan, due_at=at)


# ----- account snapshots ---------------------------------------------------------------------


def first_account_plan(now: datetime) -> Plan:
    """A newly known account gets its first snapshot at once, so readers have a value that day."""
    return Plan(now, now, PullReason.FIRST)


def next_daily(account_id: str, after: datetime, policy: PullPolicy) -> datetime:
    """The account's first daily slot strictly after `after`: the daily hour (UTC) plus a stable
    per-account offset, so the accounts of a large agency do not all call at once."""
    start = datetime.combine(after.date(), time(policy.account_hour_utc), after.tzinfo)
    slot = start + _offset(account_id, policy.account_spread)
    while slot <= after:
        slot += timedelta(days=1)
    return slot


def account_after_snapshot(account_id: str, plan: Plan, now: datetime, policy: PullPolicy) -> Plan:
    """The next daily slot after both the one just served and now: missed days during downtime
    collapse into the snapshot that just ran (a snapshot cannot be taken for a past day)."""
    at = next_daily(account_id, max(plan.slot_at, now), policy)
    return Plan(at, at, PullReason.DAILY)


# ----- canonical metrics ---------------------------------------------------------------------


@dataclass(frozen=True)
class YieldPolicy:
    """When planned pulls wait for publishing. `backlog` 0 never waits."""

    backlog: int = 2000  # unfinished due posts, over all publishers
    at_most: timedelta = timedelta(minutes=10)


def backlog_since(backlog: int | None, since: datetime | None, now: datetime, policy: YieldPolicy) -> datetime | None:
    """Since when the publishers' backlog has been over the policy's limit; None while it is not,
    or is unknown (an unknown backlog never makes pulls wait)."""
    if policy.backlog <= 0 or backlog is None or backlog <= policy.backlog:
        return None
    return since or now


def pulls_wait(since: datetime | None, now: datetime, policy: YieldPolicy) -> bool:
    """Whether planned pulls wait for publishing, given `backlog_since`.

    A top-of-the-hour burst leaves tens of thousands of posts due at once; their first pulls fall
    due a minute later, while the same cores and database still publish the rest. Waiting gives
    publishing those resources. A wait ends after `at_most` even if the backlog stays: a stopped
    publisher must not stop insights too."""
    return since is not None and now - since < policy.at_most


def as_count(value: Any) -> int | None:
    """A platform's count as an int; None for anything that is not a count (absent, hidden, junk)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def first_present(values: dict[str, Any], *names: str) -> int | None:
    """The first of `names` with a value: current names first, deprecated ones as a fallback."""
    for name in names:
        count = as_count(values.get(name))
        if count is not None:
            return count
    return None


def sum_present(values: dict[str, Any], *names: str) -> int | None:
    """The sum of the names that have a value; None when none has (missing is not zero)."""
    counts = [c for c in (as_count(values.get(n)) for n in names) if c is not None]
    return sum(counts) if counts else None


def metrics_dict(metrics: CanonicalMetrics | None) -> dict[str, int | None]:
    return {name: getattr(metrics, name) if metrics else None for name in METRIC_NAMES}


# ----- freshness -----------------------------------------------------------------------------


class Freshness(StrEnum):
    NEVER = "never"  # no values collected yet
    FRESH = "fresh"
    STALE = "stale"


def freshness(collected_at: datetime | None, now: datetime, stale_after: timedelta) -> tuple[Freshness, float | None]:
    if collected_at is None:
        return Freshness.NEVER, None
    age = max(0.0, (now - collected_at).total_seconds())
    return (Freshness.FRESH if age <= stale_after.total_seconds() else Freshness.STALE), age


# ----- refresh now ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshRefused:
    reason: str
    retry_at: datetime | None = None


def check_refresh(
    *, platform: Platform, last_refresh_at: datetime | None, now: datetime, min_interval: timedelta
) -> RefreshRefused | None:
    if platform in UNSUPPORTED_PLATFORMS:
        return RefreshRefused(f"{platform.value} has no post metrics")
    if last_refresh_at is not None and now - last_refresh_at < min_interval:
        retry_at = last_refresh_at + min_interval
        wait = int((retry_at - now).total_seconds()) + 1
        return RefreshRefused(
            f"this post was refreshed less than {int(min_interval.total_seconds())} s ago; try again in {wait} s",
            retry_at,
        )
    return None


# ----- rollups -------------------------------------------------------------------------------


@dataclass
class Rollup:
    """Sums of the latest values of a group of posts. `with_value` counts the posts that had a
    value for each metric, so a sum over posts without data is not mistaken for zero."""

    key: str | None
    posts: int = 0
    posts_with_metrics: int = 0
    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METRIC_NAMES, 0))
    with_value: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METRIC_NAMES, 0))

    def add(self, metrics: dict[str, Any] | None) -> None:
        self.posts += 1
        if not metrics or all(metrics.get(n) is None for n in METRIC_NAMES):
            return
        self.posts_with_metrics += 1
        for name in METRIC_NAMES:
            value = as_count(metrics.get(name))
            if value is not None:
                self.sums[name] += value
                self.with_value[name] += 1
