"""Pure rules of the publisher: no I/O, no clock reads (time comes in as an argument).

- what a failed attempt leads to (retry with backoff, hold, defer to a rate window, fail),
- caption limits, checked before any call (reject with a reason, never truncate),
- whether an account's granted scopes let it publish,
- the rolling rate window of one account.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID, uuid5

from shared.events import ErrorCode, Platform
from shared.scopes import PUBLISH_SCOPES, can_publish

# Namespace of the ids of events the publisher derives: a re-emitted outcome keeps its event_id.
_EVENT_NAMESPACE = UUID("6a0f3c52-9d4e-4c1b-8f57-2e7d0a9b1c34")

HASHTAG = re.compile(r"(?<!\w)#\w+")
MENTION = re.compile(r"(?<!\w)@[\w.]+")


def event_id(post_id: str, kind: str, attempt: int) -> UUID:
    return uuid5(_EVENT_NAMESPACE, f"{post_id}:{kind}:{attempt}")


class Verdict(StrEnum):
    PUBLISHED = "published"
    RETRY = "retry"  # retryable failure or rate-limit deferral: PostRetryScheduled
    HELD = "held"  # waiting for a reconnect: PostHeld
    FAILED = "failed"  # final: PostFailed
    UNCONFIRMED = "unconfirmed"  # may have gone live, no way to know: PostFailed(publish_unconfirmed)


HOLDING = frozenset({ErrorCode.TOKEN_EXPIRED, ErrorCode.ACCOUNT_INACTIVE})
FINAL = frozenset(
    {ErrorCode.CONTENT_REJECTED, ErrorCode.FORMAT_UNSUPPORTED, ErrorCode.PUBLISH_UNCONFIRMED, ErrorCode.MISSED}
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base: timedelta = timedelta(seconds=60)
    cap: timedelta = timedelta(minutes=30)
    jitter: float = 0.2

    def backoff(self, failures: int, rand: float) -> timedelta:
        """About `base` doubling per failure, capped, plus up to `jitter` of it at random (`rand` in [0, 1))."""
        delay: timedelta = min(self.cap, self.base * (2 ** max(0, failures - 1)))
        return delay + delay * (self.jitter * rand)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    error_code: ErrorCode | None = None
    next_attempt_at: datetime | None = None
    failures: int = 0  # failed attempts so far, this one included (rate-limit deferrals do not count)


def decide(
    code: ErrorCode, *, failures_before: int, now: datetime, policy: RetryPolicy, rand: float, retry_at: datetime | None
) -> Decision:
    """What a failed attempt leads to. `failures_before` counts earlier failed attempts of the post."""
    if code is ErrorCode.RATE_LIMITED:
        # Not a failure: the post waits for the window and keeps its retry budget. Never early.
        return Decision(Verdict.RETRY, code, max(retry_at or now, now), failures_before)
    if code in HOLDING:
        return Decision(Verdict.HELD, code, None, failures_before)
    if code is ErrorCode.PUBLISH_UNCONFIRMED:
        return Decision(Verdict.UNCONFIRMED, code, None, failures_before)
    failures = failures_before + 1
    if code in FINAL or failures >= policy.max_attempts:
        return Decision(Verdict.FAILED, code, None, failures)
    next_at = now + policy.backoff(failures, rand)
    if retry_at is not None:
        next_at = max(next_at, retry_at)
    return Decision(Verdict.RETRY, code, next_at, failures)


@dataclass(frozen=True)
class CaptionRules:
    max_chars: int
    max_hashtags: int | None = None
    max_mentions: int | None = None
    name: str = "caption"


def caption_problem(caption: str, rules: CaptionRules) -> str | None:
    """Why this caption cannot be published as it is, or None. Never shortened behind anyone's back."""
    if len(caption) > rules.max_chars:
        return f"the {rules.name} has {len(caption)} characters; at most {rules.max_chars} are allowed"
    if rules.max_hashtags is not None and (n := len(HASHTAG.findall(caption))) > rules.max_hashtags:
        return f"the {rules.name} has {n} hashtags; at most {rules.max_hashtags} are allowed"
    if rules.max_mentions is not None and (n := len(MENTION.findall(caption))) > rules.max_mentions:
        return f"the {rules.name} has {n} mentions; at most {rules.max_mentions} are allowed"
    return None


def scope_problem(platform: Platform, granted: Sequence[str]) -> str | None:
    """Why an account's OAuth grant cannot publish, or None.

    No recorded scopes means unknown, not read-only: accounts connected before scopes were kept, or
    through a client that did not report them, must go on publishing as they did."""
    if not granted or can_publish(platform, granted):
        return None
    return f"reconnect with publishing permission: missing scope {' or '.join(sorted(PUBLISH_SCOPES[platform]))}"


@dataclass(frozen=True)
class Limit:
    count: int
    window: timedelta


@dataclass
class RateWindow:
    """One account's posts in a rolling window (epoch seconds), plus a block until a known reset.

    The owner of the account's partition keeps it in memory and persists it; the live value a
    platform reports (quota usage, remaining/reset headers) overrides the local count."""

    stamps: list[float] = field(default_factory=list)
    blocked_until: float = 0.0
    live_checked_at: float = 0.0

    def prune(self, window: timedelta, now: float) -> None:
        horizon = now - window.total_seconds()
        if self.stamps and self.stamps[0] <= horizon:
            self.stamps = [s for s in self.stamps if s > horizon]

    def available_at(self, limit: Limit | None, now: float) -> float | None:
        """When one more post fits: None if now, else the epoch second of the reset."""
        if self.blocked_until > now:
            return self.blocked_until
        if limit is None:
            return None
        self.prune(limit.window, now)
        if len(self.stamps) < limit.count:
            return None
        # The oldest of the newest `count` stamps has to leave the window first.
        return self.stamps[len(self.stamps) - limit.count] + limit.window.total_seconds()

    def record(self, now: float) -> None:
        self.stamps.append(now)

    def release(self, stamp: float) -> None:
        """Give back a reservation whose post did not go live."""
        if stamp in self.stamps:
            self.stamps.remove(stamp)

    def block_until(self, reset: float) -> None:
        self.blocked_until = max(self.blocked_until, reset)

    def apply_live(self, *, used: int, limit: int, window: timedelta, now: float) -> float | None:
        """Adopt the platform's own count. Returns the reset when it says no budget is left."""
        self.live_checked_at = now
        self.prune(window, now)
        if used < limit:
            # The platform knows best: forget local stamps beyond what it counts.
            if len(self.stamps) > used:
                self.stamps = self.stamps[len(self.stamps) - used :] if used else []
            self.blocked_until = 0.0 if self.blocked_until > now else self.blocked_until
            return None
        known = sorted(self.stamps)
        # With the window's stamps we know when the oldest leaves; without them, wait a full window
        # at most and look again (the next attempt re-reads the live value, so it never posts early).
        reset = (
            known[len(known) - limit] + window.total_seconds()
            if 0 < limit <= len(known)
            else now + min(window.total_seconds(), 3600.0)
        )
        self.block_until(reset)
        return reset


def first_line(text: str, limit: int) -> str:
    """A title derived from a caption: its first non-empty line, cut at a word boundary."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(line) <= limit:
        return line
    cut = line[: limit - 1].rsplit(" ", 1)[0] or line[: limit - 1]
    return cut + "\u2026"


def media_count_problem(count: int, *, low: int, high: int, what: str) -> str | None:
    if not low <= count <= high:
        return f"{what} needs {low} to {high} media items; this post has {count}"
    return None
