"""Topic names (a public contract: keep them exactly) and what travels on each."""

from __future__ import annotations

from dataclasses import dataclass

from shared.events import (
    AccountStatusChanged,
    AccountVerifyRequested,
    AssetApproved,
    AssetRejected,
    Event,
    Platform,
    PostCancelled,
    PostCancelRequested,
    PostCommandRejected,
    PostDue,
    PostFailed,
    PostHeld,
    PostMetricsSynced,
    PostPublished,
    PostRescheduleRequested,
    PostRetryRequested,
    PostRetryScheduled,
    PostScheduled,
    RegenerationRequested,
)

ASSETS_APPROVED = "assets.approved.v1"
ASSETS_REJECTED = "assets.rejected.v1"
ASSETS_REGENERATION_REQUESTED = "assets.regeneration-requested.v1"
POSTS_COMMANDS = "posts.commands.v1"
POSTS_SCHEDULED = "posts.scheduled.v1"
POSTS_PUBLISHED = "posts.published.v1"
POSTS_FAILED = "posts.failed.v1"
POSTS_RETRY_SCHEDULED = "posts.retry-scheduled.v1"
POSTS_HELD = "posts.held.v1"
POSTS_CANCELLED = "posts.cancelled.v1"
POSTS_COMMAND_REJECTED = "posts.command-rejected.v1"
ACCOUNTS_COMMANDS = "accounts.commands.v1"
ACCOUNTS_STATUS_CHANGED = "accounts.status-changed.v1"
METRICS_SYNCED = "metrics.synced.v1"


def posts_due(platform: Platform | str) -> str:
    return f"posts.due.{Platform(platform).value}.v1"


def publisher_group(platform: Platform | str) -> str:
    """The consumer group that publishes `posts_due(platform)`. Its committed offsets trail the
    oldest post it has not finished, which is how others read the publishing backlog."""
    return f"publisher.{Platform(platform).value}"


def dead_letter(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    events: tuple[type[Event], ...]
    key: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str


_ANALYTICS = "analytics"

CATALOG: tuple[TopicSpec, ...] = (
    TopicSpec(
        ASSETS_APPROVED,
        (AssetApproved,),
        "asset_id",
        ("approval",),
        ("scheduler", _ANALYTICS),
        "Approved content with its targets and schedule.",
    ),
    TopicSpec(
        ASSETS_REJECTED,
        (AssetRejected,),
        "asset_id",
        ("approval",),
        (_ANALYTICS,),
        "Content rejected or discarded, with the reason.",
    ),
    TopicSpec(
        ASSETS_REGENERATION_REQUESTED,
        (RegenerationRequested,),
        "asset_id",
        ("approval",),
        ("generator",),
        "Content sent back to the generator with feedback.",
    ),
    TopicSpec(
        POSTS_COMMANDS,
        (PostCancelRequested, PostRescheduleRequested, PostRetryRequested),
        "post_id",
        ("approval",),
        ("scheduler",),
        "A person's decisions about one post.",
    ),
    TopicSpec(
        POSTS_SCHEDULED,
        (PostScheduled,),
        "post_id",
        ("scheduler",),
        ("scheduler", "approval", _ANALYTICS),
        "One post per target with its due time in UTC.",
    ),
    *(
        TopicSpec(
            posts_due(p),
            (PostDue,),
            "account_id",
            ("scheduler",),
            ("publisher",),
            f"Posts due now on {p.value}, everything but secrets, with the attempt number.",
        )
        for p in Platform
    ),
    TopicSpec(
        POSTS_PUBLISHED,
        (PostPublished,),
        "post_id",
        ("publisher",),
        ("approval", "metrics", _ANALYTICS),
        "A post went live: remote id, permalink, time, attempt.",
    ),
    TopicSpec(
        POSTS_FAILED,
        (PostFailed,),
        "post_id",
        ("publisher", "scheduler"),
        ("approval", _ANALYTICS),
        "Final failure with error code and the platform's own message.",
    ),
    TopicSpec(
        POSTS_RETRY_SCHEDULED,
        (PostRetryScheduled,),
        "post_id",
        ("publisher",),
        ("scheduler", "approval"),
        "A retryable failure or rate-limit deferral with the next attempt time.",
    ),
    TopicSpec(
        POSTS_HELD,
        (PostHeld,),
        "post_id",
        ("publisher",),
        ("scheduler", "approval"),
        "A post waiting for a reconnect or a platform app review.",
    ),
    TopicSpec(
        POSTS_CANCELLED,
        (PostCancelled,),
        "post_id",
        ("scheduler",),
        ("approval", _ANALYTICS),
        "A post cancelled before it was published.",
    ),
    TopicSpec(
        POSTS_COMMAND_REJECTED,
        (PostCommandRejected,),
        "post_id",
        ("scheduler",),
        ("approval",),
        "A cancel, reschedule or retry that was refused, with the reason (e.g. already published).",
    ),
    TopicSpec(
        ACCOUNTS_COMMANDS,
        (AccountVerifyRequested,),
        "account_id",
        ("approval",),
        ("publisher",),
        "Check an account's token against its platform now.",
    ),
    TopicSpec(
        ACCOUNTS_STATUS_CHANGED,
        (AccountStatusChanged,),
        "account_id",
        ("approval", "publisher"),
        ("scheduler", "publisher", "approval", "metrics"),
        "An account became active, expired, revoked or pending review.",
    ),
    TopicSpec(
        METRICS_SYNCED,
        (PostMetricsSynced,),
        "post_id",
        ("metrics",),
        ("approval", _ANALYTICS),
        "Canonical metrics and the raw payload pulled for a post.",
    ),
)

_BY_NAME = {spec.name: spec for spec in CATALOG}


def spec(topic: str) -> TopicSpec:
    try:
        return _BY_NAME[topic]
    except KeyError:
        raise KeyError(f"unknown topic {topic!r}") from None


def all_topics(*, with_dead_letters: bool = True) -> list[str]:
    names = [s.name for s in CATALOG]
    return names + [dead_letter(n) for n in names] if with_dead_letters else names
