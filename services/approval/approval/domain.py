"""Pure rules of the approval service: no I/O, no clock reads (time comes in as an argument).

- roles and what each may do,
- the asset state machine (drafts, approval, versions),
- validation of an asset's targets against their platforms' limits (PLATFORMS.md),
- when a local publish time becomes a UTC instant,
- the post read model: how each post event moves a post, never backwards,
- each post's attempt history, where the board's failure reason comes from,
- the aggregate status of an asset from its posts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from shared.events import (
    AccountStatus,
    ErrorCode,
    Event,
    MediaRef,
    Platform,
    PostCancelled,
    PostCommandRejected,
    PostFailed,
    PostFormat,
    PostHeld,
    PostMetricsSynced,
    PostPublished,
    PostRetryScheduled,
    PostScheduled,
    Schedule,
)

# --------------------------------------------------------------------------------------------
# Errors: every refusal carries a machine-readable code and a reason a person can act on.


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str
    target_id: str | None = None


class DomainError(Exception):
    code = "domain_error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, violations: Sequence[Violation] = ()) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.violations = list(violations)


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class InvalidContent(DomainError):
    code = "validation_failed"
    status = 422


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


# --------------------------------------------------------------------------------------------
# Roles


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    APPROVER = "approver"
    ADMIN = "admin"


_ROLE_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.APPROVER: 2, Role.ADMIN: 3}


def role_allows(role: Role, needed: Role) -> bool:
    """Roles are cumulative: an approver can also edit, an admin can do everything."""
    return _ROLE_RANK[role] >= _ROLE_RANK[needed]


# --------------------------------------------------------------------------------------------
# Asset state machine


class AssetState(StrEnum):
    DRAFT = "draft"  # editable, not on the approval queue, never published
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    DISCARDED = "discarded"
    REGENERATION_REQUESTED = "regeneration_requested"


class AssetAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    DISCARD = "discard"
    REQUEST_REGENERATION = "request_regeneration"
    SUBMIT_VERSION = "submit_version"
    EDIT_DRAFT = "edit_draft"
    SUBMIT = "submit"
    RETURN_TO_DRAFT = "return_to_draft"


# A table, so new states are new rows, not new branches.
TRANSITIONS: Mapping[tuple[AssetState, AssetAction], AssetState] = {
    (AssetState.DRAFT, AssetAction.EDIT_DRAFT): AssetState.DRAFT,
    (AssetState.DRAFT, AssetAction.SUBMIT): AssetState.PENDING_APPROVAL,
    (AssetState.DRAFT, AssetAction.DISCARD): AssetState.DISCARDED,
    (AssetState.PENDING_APPROVAL, AssetAction.RETURN_TO_DRAFT): AssetState.DRAFT,
    (AssetState.PENDING_APPROVAL, AssetAction.APPROVE): AssetState.APPROVED,
    (AssetState.PENDING_APPROVAL, AssetAction.REJECT): AssetState.REJECTED,
    (AssetState.PENDING_APPROVAL, AssetAction.DISCARD): AssetState.DISCARDED,
    (AssetState.PENDING_APPROVAL, AssetAction.REQUEST_REGENERATION): AssetState.REGENERATION_REQUESTED,
    (AssetState.PENDING_APPROVAL, AssetAction.SUBMIT_VERSION): AssetState.PENDING_APPROVAL,
    (AssetState.REGENERATION_REQUESTED, AssetAction.SUBMIT_VERSION): AssetState.PENDING_APPROVAL,
    (AssetState.REGENERATION_REQUESTED, AssetAction.DISCARD): AssetState.DISCARDED,
}


def transition(state: AssetState, action: AssetAction) -> AssetState:
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        allowed = sorted(a.value for (s, a) in TRANSITIONS if s == state) or ["nothing (final state)"]
        raise Conflict(
            f"cannot {action.value.replace('_', ' ')} an asset that is {state.value}; allowed: {', '.join(allowed)}",
            code="invalid_transition",
        ) from None


class PendingEdits(StrEnum):
    """What editing content that waits for approval does (a workspace setting)."""

    NEW_VERSION = "new_version"  # stays on the approval queue as the next version
    BACK_TO_DRAFT = "back_to_draft"  # leaves the queue until it is submitted again


def edit_action(state: AssetState, preference: PendingEdits) -> AssetAction:
    """The transition an edit of the content means in `state`."""
    if state is AssetState.DRAFT:
        return AssetAction.EDIT_DRAFT
    if state is AssetState.PENDING_APPROVAL and preference is PendingEdits.BACK_TO_DRAFT:
        return AssetAction.RETURN_TO_DRAFT
    return AssetAction.SUBMIT_VERSION


# --------------------------------------------------------------------------------------------
# Content and its validation against platform limits


def storable_mapping(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form JSON objects (options, profiles) must be storable as documents: keys may not
    start with '$' or contain '.' or NUL, nesting stays shallow, and a list may not hold a list
    directly (FerretDB, the local MongoDB stand-in, refuses nested arrays; wrap them in objects)."""

    def check(node: Any, depth: int) -> None:
        if depth > 8:  # a generous bound for platform options and profiles
            raise ValueError("nested too deeply (at most 8 levels)")
        if isinstance(node, dict):
            for key, child in node.items():
                if not key or key.startswith("$") or "." in key or "\x00" in key:
                    raise ValueError(f"key {key[:40]!r} is not allowed: no leading '$', no '.', not empty")
                check(child, depth + 1)
        elif isinstance(node, list):
            for child in node:
                if isinstance(child, list):
                    raise ValueError("a list may not directly contain a list; wrap the inner list in an object")
                check(child, depth + 1)
        elif isinstance(node, str) and "\x00" in node:
            raise ValueError("text may not contain NUL characters")

    check(value, 0)
    return value


class TargetSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    target_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    account_id: str = Field(min_length=1, max_length=64)
    format: PostFormat
    caption: str | None = Field(default=None, max_length=10_000, description="Overrides the asset's caption")
    options: dict[str, Any] = Field(default_factory=dict, description="Per-platform options, e.g. tiktok_inbox")

    _storable = field_validator("options")(storable_mapping)


@dataclass(frozen=True)
class AccountFacts:
    """What validation and approval need to know about a target's account."""

    account_id: str
    platform: Platform
    timezone: str
    status: AccountStatus


@dataclass(frozen=True)
class PlatformRules:
    formats: frozenset[PostFormat]
    caption_max: int
    caption_max_with_media: int | None = None
    hashtags_max: int | None = None
    mentions_max: int | None = None
    carousel_items: tuple[int, int] = (2, 10)
    post_images_max: int = 10
    image_max_bytes: int | None = None
    image_mime_types: frozenset[str] | None = None  # None: any image type
    image_aspect: tuple[float, float] | None = None  # width / height, inclusive
    video_seconds: Mapping[PostFormat, tuple[float, float]] = field(default_factory=dict)
    video_max_bytes: int | None = None
    post_needs_image: bool = False
    known_options: frozenset[str] = frozenset()


_F = PostFormat
MB = 1024 * 1024

# Defaults from PLATFORMS.md (late 2026); configuration in spirit, kept here as pure data.
PLATFORM_RULES: Mapping[Platform, PlatformRules] = {
    Platform.INSTAGRAM: PlatformRules(
        formats=frozenset({_F.REEL, _F.CAROUSEL, _F.STORY}),
        caption_max=2200,
        hashtags_max=30,
        mentions_max=20,
        image_max_bytes=8 * MB,
        image_mime_types=frozenset({"image/jpeg"}),
        image_aspect=(4 / 5, 1.91),
        video_seconds={_F.REEL: (3, 15 * 60), _F.STORY: (3, 60)},
        video_max_bytes=300 * MB,
        known_options=frozenset({"share_to_feed", "cover_url", "location_id"}),
    ),
    Platform.FACEBOOK: PlatformRules(
        formats=frozenset({_F.REEL, _F.CAROUSEL, _F.STORY, _F.POST, _F.VIDEO}),
        caption_max=63_206,
    ),
    Platform.X: PlatformRules(
        formats=frozenset({_F.CAROUSEL, _F.POST, _F.VIDEO}),
        caption_max=280,
        carousel_items=(2, 4),
        post_images_max=4,
        image_max_bytes=5 * MB,
    ),
    Platform.TIKTOK: PlatformRules(
        formats=frozenset({_F.REEL, _F.CAROUSEL, _F.VIDEO}),
        caption_max=2200,
        carousel_items=(1, 35),
        known_options=frozenset({"tiktok_inbox", "privacy_level", "disable_comment", "disable_duet"}),
    ),
    Platform.YOUTUBE: PlatformRules(
        formats=frozenset({_F.REEL, _F.VIDEO}),
        caption_max=5000,
        known_options=frozenset({"title", "privacy_status", "category_id", "tags"}),
    ),
    Platform.LINKEDIN: PlatformRules(formats=frozenset({_F.POST, _F.VIDEO}), caption_max=3000),
    Platform.THREADS: PlatformRules(
        formats=frozenset({_F.REEL, _F.CAROUSEL, _F.POST}), caption_max=500, carousel_items=(2, 20)
    ),
    Platform.PINTEREST: PlatformRules(
        formats=frozenset({_F.CAROUSEL, _F.POST}),
        caption_max=500,
        post_needs_image=True,
        known_options=frozenset({"board_id", "title", "link", "alt_text"}),
    ),
    Platform.TELEGRAM: PlatformRules(
        formats=frozenset({_F.POST, _F.CAROUSEL}),
        caption_max=4096,
        caption_max_with_media=1024,
        carousel_items=(2, 10),
    ),
}

_HASHTAG = re.compile(r"(?<!\w)#\w+")
_MENTION = re.compile(r"(?<!\w)@\w+")
YOUTUBE_TITLE_MAX = 100


def validate_timezone(name: str) -> str | None:
    """None when `name` is a valid IANA zone, else why not."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{name!r} is not an IANA time zone (e.g. Europe/Berlin)"
    return None


def validate_asset(
    *,
    caption: str,
    media: Sequence[MediaRef],
    targets: Sequence[TargetSpec],
    schedule: Schedule,
    accounts: Mapping[str, AccountFacts],
) -> list[Violation]:
    """Every rule the metadata lets us check, each violation naming its target and rule."""
    problems: list[Violation] = []
    ids = [t.target_id for t in targets]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(Violation("duplicate_target", f"target_id {dup!r} is used more than once", dup))
    if schedule.timezone and (why := validate_timezone(schedule.timezone)):
        problems.append(Violation("invalid_timezone", f"schedule timezone: {why}"))
    problems.extend(_schedule_problems(schedule))
    for target in targets:
        account = accounts.get(target.account_id)
        if account is None:
            problems.append(
                Violation("unknown_account", f"account {target.account_id!r} is not connected here", target.target_id)
            )
            continue
        problems.extend(validate_target(target, account.platform, caption=caption, media=media))
    return problems


EARLIEST_SCHEDULE = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_SCHEDULE = datetime(2100, 1, 1, tzinfo=UTC)


def _schedule_problems(schedule: Schedule) -> list[Violation]:
    when = schedule.at_utc or (schedule.local_time.replace(tzinfo=UTC) if schedule.local_time else None)
    if when is not None and not EARLIEST_SCHEDULE <= when <= LATEST_SCHEDULE:
        return [Violation("schedule_out_of_range", "the publish time must fall between the years 2000 and 2100")]
    return []


def validate_target(
    target: TargetSpec, platform: Platform, *, caption: str, media: Sequence[MediaRef]
) -> list[Violation]:
    rules = PLATFORM_RULES[platform]
    tid = target.target_id
    where = f"target {tid} ({platform.value} {target.format.value})"
    problems: list[Violation] = []

    def fail(rule: str, message: str) -> None:
        problems.append(Violation(rule, f"{where}: {message}", tid))

    if target.format not in rules.formats:
        offered = ", ".join(sorted(f.value for f in rules.formats))
        fail("format_unsupported", f"{platform.value} does not offer {target.format.value}; it offers {offered}")
        return problems

    text = target.caption if target.caption is not None else caption
    limit = rules.caption_max_with_media if media and rules.caption_max_with_media else rules.caption_max
    if len(text) > limit:
        fail("caption_too_long", f"caption has {len(text)} characters, the limit is {limit}")
    if rules.hashtags_max is not None and (n := len(_HASHTAG.findall(text))) > rules.hashtags_max:
        fail("too_many_hashtags", f"caption has {n} hashtags, the limit is {rules.hashtags_max}")
    if rules.mentions_max is not None and (n := len(_MENTION.findall(text))) > rules.mentions_max:
        fail("too_many_mentions", f"caption has {n} mentions, the limit is {rules.mentions_max}")
    if platform is Platform.YOUTUBE:
        title = target.options.get("title")
        if not isinstance(title, str) or not title.strip():
            fail("title_required", "YouTube needs options.title")
        elif len(title) > YOUTUBE_TITLE_MAX:
            fail("title_too_long", f"title has {len(title)} characters, the limit is {YOUTUBE_TITLE_MAX}")
    if rules.known_options and (unknown := sorted(set(target.options) - rules.known_options)):
        fail("unknown_option", f"unknown options {unknown}; known: {sorted(rules.known_options)}")

    problems.extend(
        Violation(rule, f"{where}: {msg}", tid) for rule, msg in _media_problems(target.format, rules, media)
    )
    return problems


def _media_problems(fmt: PostFormat, rules: PlatformRules, media: Sequence[MediaRef]) -> Iterable[tuple[str, str]]:
    yield from _media_count_problems(fmt, rules, media)
    yield from _media_item_problems(fmt, rules, media)


def _media_count_problems(
    fmt: PostFormat, rules: PlatformRules, media: Sequence[MediaRef]
) -> Iterable[tuple[str, str]]:
    images = [m for m in media if m.type == "image"]
    videos = [m for m in media if m.type == "video"]
    if fmt in (PostFormat.REEL, PostFormat.VIDEO):
        if len(videos) != 1 or images:
            got = f"got {len(videos)} video(s), {len(images)} image(s)"
            yield "media_count", f"{fmt.value} needs exactly one video and no images ({got})"
    elif fmt is PostFormat.STORY:
        if len(media) != 1:
            yield "media_count", f"a story needs exactly one image or video (got {len(media)})"
    elif fmt is PostFormat.CAROUSEL:
        low, high = rules.carousel_items
        if not low <= len(media) <= high:
            yield "media_count", f"a carousel takes {low} to {high} items (got {len(media)})"
    elif fmt is PostFormat.POST:
        if rules.post_needs_image and not images:
            yield "media_required", "a post here needs an image"
        if videos and (images or len(videos) > 1):
            yield "media_count", "a post takes either images or one video"
        if len(images) > rules.post_images_max:
            yield "media_count", f"a post takes at most {rules.post_images_max} images (got {len(images)})"


def _media_item_problems(fmt: PostFormat, rules: PlatformRules, media: Sequence[MediaRef]) -> Iterable[tuple[str, str]]:
    for index, item in enumerate(media):
        label = f"media[{index}]"
        if item.type == "image":
            if rules.image_max_bytes and item.size_bytes and item.size_bytes > rules.image_max_bytes:
                yield "image_too_large", f"{label} is {item.size_bytes} bytes, the limit is {rules.image_max_bytes}"
            if rules.image_mime_types and item.mime_type and item.mime_type not in rules.image_mime_types:
                allowed = ", ".join(sorted(rules.image_mime_types))
                yield "image_format", f"{label} is {item.mime_type}, allowed {allowed}"
            if rules.image_aspect and item.width and item.height:
                low_a, high_a = rules.image_aspect
                ratio = item.width / item.height
                if not low_a - 1e-3 <= ratio <= high_a + 1e-3:
                    yield (
                        "aspect_ratio",
                        f"{label} is {item.width}x{item.height} (ratio {ratio:.2f}), "
                        f"allowed {low_a:.2f} to {high_a:.2f}",
                    )
        else:
            bounds = rules.video_seconds.get(fmt)
            if bounds and item.duration_seconds is not None and not bounds[0] <= item.duration_seconds <= bounds[1]:
                yield (
                    "video_duration",
                    f"{label} lasts {item.duration_seconds:g} s, allowed {bounds[0]:g} to {bounds[1]:g} s",
                )
            if rules.video_max_bytes and item.size_bytes and item.size_bytes > rules.video_max_bytes:
                yield "video_too_large", f"{label} is {item.size_bytes} bytes, the limit is {rules.video_max_bytes}"


def select_targets(targets: Sequence[TargetSpec], deselected: Iterable[str]) -> list[TargetSpec]:
    """The targets an approval publishes to; deselected ones are suppressed."""
    deselected = set(deselected)
    unknown = sorted(deselected - {t.target_id for t in targets})
    if unknown:
        raise InvalidContent(
            f"cannot deselect unknown targets {unknown}",
            code="unknown_target",
            violations=[Violation("unknown_target", f"target {t!r} is not on this asset", t) for t in unknown],
        )
    chosen = [t for t in targets if t.target_id not in deselected]
    if not chosen:
        raise InvalidContent(
            "nothing in scope: every target was deselected, so there is nothing to publish", code="nothing_in_scope"
        )
    return chosen


# --------------------------------------------------------------------------------------------
# Time


def resolve_due_at(schedule: Schedule, account_timezone: str, now: datetime) -> datetime:
    """The UTC instant a schedule means.

    Local times at DST changes: a time that does not exist (spring forward) moves forward by the
    gap (02:30 becomes 03:30); a time that occurs twice (fall back) means the first occurrence.
    """
    if schedule.publish_now:
        return now.astimezone(UTC)
    if schedule.at_utc is not None:
        return schedule.at_utc.astimezone(UTC)
    assert schedule.local_time is not None
    zone = ZoneInfo(schedule.timezone or account_timezone)
    # fold=0 picks the first occurrence; for a nonexistent time it uses the offset before the gap,
    # which lands after it once converted to UTC.
    return schedule.local_time.replace(tzinfo=zone, fold=0).astimezone(UTC)


# --------------------------------------------------------------------------------------------
# Post read model


class PostStatus(StrEnum):
    PENDING = "pending"  # approved; the scheduler has not confirmed it yet
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"  # derived at read time: due, no outcome yet
    QUEUED = "queued"  # deferred until a rate-limit window resets
    RETRYING = "retrying"
    HELD = "held"
    PUBLISHED = "published"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"
    CANCELLED = "cancelled"
    MISSED = "missed"


TERMINAL = frozenset(
    {PostStatus.PUBLISHED, PostStatus.FAILED, PostStatus.UNCONFIRMED, PostStatus.CANCELLED, PostStatus.MISSED}
)
RETRYABLE_BY_PERSON = frozenset({PostStatus.FAILED, PostStatus.UNCONFIRMED, PostStatus.MISSED})
CANCELLABLE = frozenset(
    {PostStatus.PENDING, PostStatus.SCHEDULED, PostStatus.QUEUED, PostStatus.RETRYING, PostStatus.HELD}
)

# Within one attempt: waiting < held < final failure < published. A later attempt outranks all.
_RANK_WAITING, _RANK_HELD, _RANK_FINAL, _RANK_PUBLISHED = 1, 2, 4, 5


class PostView(BaseModel):
    """One post of the board, as the events have told us so far."""

    model_config = ConfigDict(extra="ignore")

    post_id: str
    workspace_id: str
    asset_id: str
    target_id: str | None = None
    account_id: str
    platform: Platform
    format: PostFormat | None = None
    campaign: str | None = None
    status: PostStatus = PostStatus.PENDING
    due_at: AwareDatetime | None = None
    attempt: int = 1
    rank: int = 0
    last_event_at: AwareDatetime | None = None
    next_attempt_at: AwareDatetime | None = None
    error_code: ErrorCode | None = None
    error_message: str | None = None
    platform_error: dict[str, Any] | None = None
    held_reason: str | None = None
    remote_id: str | None = None
    permalink: str | None = None
    published_at: AwareDatetime | None = None
    visibility: str | None = None
    metrics: dict[str, int | None] = Field(default_factory=dict)
    metrics_collected_at: AwareDatetime | None = None
    last_command: dict[str, Any] | None = None
    rev: int = 0  # bumped on every write, for compare-and-set


class AttemptOutcome(StrEnum):
    PUBLISHED = "published"
    RETRY_SCHEDULED = "retry_scheduled"
    DEFERRED = "deferred"  # the rate window is spent: waits for its reset, not a failure
    HELD = "held"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"


class AttemptEntry(BaseModel):
    """One attempt's outcome in a post's history, as its event reported it."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    post_id: str
    workspace_id: str
    attempt: int = Field(ge=0, description="0: failed before any attempt (e.g. an invalid schedule)")
    outcome: AttemptOutcome
    at: AwareDatetime
    producer: str
    error_code: ErrorCode | None = None
    message: str | None = Field(default=None, description="The platform's own words, or why the post waits")
    platform_error: dict[str, Any] | None = Field(default=None, description="Raw platform error, secrets removed")
    next_attempt_at: AwareDatetime | None = None
    remote_id: str | None = None
    permalink: str | None = None


def attempt_entry(event: Event) -> AttemptEntry | None:
    """The history entry of an attempt's outcome event; None for any other event."""
    common: dict[str, Any] = {
        "event_id": str(event.event_id),
        "workspace_id": event.workspace_id,
        "at": event.occurred_at,
        "producer": event.producer,
    }
    if isinstance(event, PostPublished):
        return AttemptEntry(
            **common,
            post_id=event.post_id,
            attempt=event.attempt,
            outcome=AttemptOutcome.PUBLISHED,
            remote_id=event.remote_id,
            permalink=event.permalink,
        )
    if isinstance(event, PostRetryScheduled):
        deferred = event.error_code is ErrorCode.RATE_LIMITED
        return AttemptEntry(
            **common,
            post_id=event.post_id,
            attempt=event.attempt,
            outcome=AttemptOutcome.DEFERRED if deferred else AttemptOutcome.RETRY_SCHEDULED,
            error_code=event.error_code,
            message=event.error_message,
            platform_error=event.platform_error,
            next_attempt_at=event.next_attempt_at,
        )
    if isinstance(event, PostHeld):
        return AttemptEntry(
            **common,
            post_id=event.post_id,
            attempt=event.attempt,
            outcome=AttemptOutcome.HELD,
            error_code=event.error_code,
            message=event.reason,
            platform_error=event.platform_error,
        )
    if isinstance(event, PostFailed):
        unconfirmed = event.error_code is ErrorCode.PUBLISH_UNCONFIRMED
        return AttemptEntry(
            **common,
            post_id=event.post_id,
            attempt=event.attempts,
            outcome=AttemptOutcome.UNCONFIRMED if unconfirmed else AttemptOutcome.FAILED,
            error_code=event.error_code,
            message=event.error_message,
            platform_error=event.platform_error,
        )
    return None


def _failure_reason(event: PostRetryScheduled | PostHeld | PostFailed) -> dict[str, Any]:
    """The board's answer to "why did this fail": the attempt's history entry, so the board and
    the history never tell two stories."""
    entry = attempt_entry(event)
    assert entry is not None
    return {"error_code": entry.error_code, "error_message": entry.message, "platform_error": entry.platform_error}


def _event_progress(event: Event, current: PostView) -> tuple[int, int] | None:  # noqa: PLR0911 - one per type
    if isinstance(event, PostScheduled):
        return event.attempt, _RANK_WAITING
    if isinstance(event, PostRetryScheduled):
        return event.next_attempt, _RANK_WAITING
    if isinstance(event, PostHeld):
        return event.attempt, _RANK_HELD
    if isinstance(event, PostFailed):
        return max(event.attempts, 1), _RANK_FINAL
    if isinstance(event, PostCancelled):
        return current.attempt, _RANK_FINAL
    if isinstance(event, PostPublished):
        return event.attempt, _RANK_PUBLISHED
    return None


def _moves_forward(event: Event, current: PostView) -> bool:
    progress = _event_progress(event, current)
    if progress is None:
        return False
    if current.status is PostStatus.PUBLISHED:
        return False  # nothing undoes a live post
    if current.status is PostStatus.CANCELLED and not isinstance(event, PostPublished):
        return False
    ours = (current.attempt, current.rank, current.last_event_at or datetime.min.replace(tzinfo=UTC))
    return (*progress, event.occurred_at) > ours


def _failed_status(code: ErrorCode) -> PostStatus:
    if code is ErrorCode.PUBLISH_UNCONFIRMED:
        return PostStatus.UNCONFIRMED
    if code is ErrorCode.MISSED:
        return PostStatus.MISSED
    return PostStatus.FAILED


def apply_post_event(current: PostView, event: Event) -> PostView | None:
    """The post after `event`, or None when the event changes nothing (duplicate, late, or stale).

    Status events are ordered by (attempt, rank within the attempt, occurred_at): a late
    PostScheduled after PostPublished, or a redelivered PostRetryScheduled of an earlier attempt,
    is ignored. Metrics only ever replace older metrics.
    """
    if isinstance(event, PostMetricsSynced):
        if current.metrics_collected_at and event.collected_at <= current.metrics_collected_at:
            return None
        return current.model_copy(
            update={"metrics": event.metrics.model_dump(), "metrics_collected_at": event.collected_at}
        )
    if isinstance(event, PostCommandRejected):
        command = current.last_command or {}
        if command.get("event_id") != event.command_event_id or command.get("rejected_reason"):
            return None
        return current.model_copy(update={"last_command": {**command, "rejected_reason": event.reason}})
    if not _moves_forward(event, current):
        return None
    progress = _event_progress(event, current)
    assert progress is not None
    update: dict[str, Any] = {"attempt": progress[0], "rank": progress[1], "last_event_at": event.occurred_at}
    if isinstance(event, PostScheduled):
        update |= {
            "status": PostStatus.SCHEDULED,
            "due_at": event.due_at,
            "target_id": event.target_id,
            "format": event.format,
            "campaign": event.campaign,
            "next_attempt_at": None,
        }
    elif isinstance(event, PostRetryScheduled):
        update |= _failure_reason(event) | {
            "status": PostStatus.QUEUED if event.error_code is ErrorCode.RATE_LIMITED else PostStatus.RETRYING,
            "next_attempt_at": event.next_attempt_at,
        }
    elif isinstance(event, PostHeld):
        update |= _failure_reason(event) | {
            "status": PostStatus.HELD,
            "held_reason": event.reason,
            "next_attempt_at": None,
        }
    elif isinstance(event, PostFailed):
        update |= _failure_reason(event) | {"status": _failed_status(event.error_code), "next_attempt_at": None}
    elif isinstance(event, PostCancelled):
        update |= {"status": PostStatus.CANCELLED, "next_attempt_at": None}
    elif isinstance(event, PostPublished):
        update |= {
            "status": PostStatus.PUBLISHED,
            "remote_id": event.remote_id,
            "permalink": event.permalink,
            "published_at": event.published_at,
            "visibility": event.visibility,
            "next_attempt_at": None,
            "held_reason": None,
        }
    return current.model_copy(update=update)


def effective_status(post: PostView, now: datetime) -> PostStatus:
    """What a person should see now: a scheduled or retrying post whose time has come is publishing."""
    if post.status is PostStatus.SCHEDULED and post.due_at and post.due_at <= now:
        return PostStatus.PUBLISHING
    if post.status in (PostStatus.RETRYING, PostStatus.QUEUED) and post.next_attempt_at and post.next_attempt_at <= now:
        return PostStatus.PUBLISHING
    return post.status


class AggregateStatus(StrEnum):
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"
    HELD = "held"
    PUBLISHED = "published"
    PARTIALLY_PUBLISHED = "partially_published"
    FAILED = "failed"
    CANCELLED = "cancelled"


_NOT_PUBLISHED_FINAL = frozenset({PostStatus.FAILED, PostStatus.UNCONFIRMED, PostStatus.MISSED})


def aggregate_status(statuses: Sequence[PostStatus]) -> AggregateStatus | None:  # noqa: PLR0911 - a decision table
    """One status for an approved asset from its posts' statuses (None before it has posts)."""
    if not statuses:
        return None
    s = set(statuses)
    if s <= TERMINAL:
        if s == {PostStatus.CANCELLED}:
            return AggregateStatus.CANCELLED
        published = PostStatus.PUBLISHED in s
        failed = bool(s & _NOT_PUBLISHED_FINAL)
        if published and failed:
            return AggregateStatus.PARTIALLY_PUBLISHED
        return AggregateStatus.PUBLISHED if published else AggregateStatus.FAILED
    if s & {PostStatus.PUBLISHING, PostStatus.RETRYING, PostStatus.QUEUED} or s & TERMINAL:
        return AggregateStatus.PUBLISHING
    if PostStatus.HELD in s:
        return AggregateStatus.HELD
    return AggregateStatus.SCHEDULED


# Statuses `aggregate_status` does not tell apart. A post moving within one group leaves its
# asset's status as it was, so the asset's copy of it is not rewritten: one database update
# less per post on the way from pending to scheduled.
_ALIKE_FOR_AGGREGATE = (
    frozenset({PostStatus.PENDING, PostStatus.SCHEDULED}),
    frozenset({PostStatus.QUEUED, PostStatus.PUBLISHING, PostStatus.RETRYING}),
)


def aggregate_tells_apart(before: PostStatus, after: PostStatus) -> bool:
    return before != after and not any(before in group and after in group for group in _ALIKE_FOR_AGGREGATE)


def local_time(instant: datetime, timezone: str) -> datetime:
    return instant.astimezone(ZoneInfo(timezone))


SOFT_DELETE_RETENTION = timedelta(days=30)


# --------------------------------------------------------------------------------------------
# What the service stores (plain data; the adapters map it to documents)


class Workspace(BaseModel):
    workspace_id: str
    name: str
    timezone: str = "UTC"
    publishing_enabled: bool = False
    pending_edits: PendingEdits = PendingEdits.NEW_VERSION
    created_at: AwareDatetime
    updated_at: AwareDatetime


class ApiKey(BaseModel):
    key_id: str
    workspace_id: str
    name: str
    role: Role
    secret_hash: str
    created_at: AwareDatetime
    created_by: str | None = None
    revoked_at: AwareDatetime | None = None


class Account(BaseModel):
    account_id: str
    workspace_id: str
    platform: Platform
    handle: str
    remote_id: str | None = None
    profile: dict[str, Any] = Field(default_factory=dict)
    timezone: str = "UTC"
    status: AccountStatus = AccountStatus.ACTIVE
    status_reason: str | None = None
    status_changed_at: AwareDatetime
    scopes: list[str] = Field(default_factory=list)
    token_expires_at: AwareDatetime | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime

    def facts(self) -> AccountFacts:
        return AccountFacts(self.account_id, self.platform, self.timezone, self.status)


class AssetHistoryEntry(BaseModel):
    at: AwareDatetime
    action: str
    by: str | None = None
    version: int
    note: str | None = None


class AssetVersion(BaseModel):
    """The content as one save left it: the asset's version history is a list of these."""

    version: int
    state: AssetState
    saved_at: AwareDatetime
    saved_by: str | None = None
    caption: str
    media: list[MediaRef]
    targets: list[TargetSpec]
    schedule: Schedule
    campaign: str | None = None
    source: str | None = None


class Asset(BaseModel):
    asset_id: str
    workspace_id: str
    version: int = 1
    state: AssetState = AssetState.PENDING_APPROVAL
    caption: str = ""
    media: list[MediaRef] = Field(default_factory=list)
    targets: list[TargetSpec]
    schedule: Schedule
    campaign: str | None = None
    source: str | None = None
    created_by: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    deselected: list[str] = Field(default_factory=list)
    decided_by: str | None = None
    decided_at: AwareDatetime | None = None
    reason: str | None = None
    feedback: str | None = None
    deleted_at: AwareDatetime | None = None
    history: list[AssetHistoryEntry] = Field(default_factory=list)
    versions: list[AssetVersion] = Field(default_factory=list)
    approved_by_policies: list[str] = Field(default_factory=list, description="Autopilot policies that approved it")
    pending_reason: str | None = None  # why an autopilot policy left it for a person
    # post_id -> status, kept up to date by the read model so the board needs no join; only moves
    # the aggregate tells apart are written (a scheduled post may still read pending here)
    post_statuses: dict[str, PostStatus] = Field(default_factory=dict)

    def record(self, action: str, by: str | None, at: datetime, note: str | None = None) -> None:
        self.history.append(AssetHistoryEntry(at=at, action=action, by=by, version=self.version, note=note))

    def snapshot(self, by: str | None, at: datetime) -> None:
        """Keep the content of this version for the version history."""
        self.versions.append(
            AssetVersion(
                version=self.version,
                state=self.state,
                saved_at=at,
                saved_by=by,
                caption=self.caption,
                media=list(self.media),
                targets=list(self.targets),
                schedule=self.schedule,
                campaign=self.campaign,
                source=self.source,
            )
        )


def asset_aggregate(asset: Asset) -> AggregateStatus | None:
    return aggregate_status(list(asset.post_statuses.values())) if asset.state is AssetState.APPROVED else None
