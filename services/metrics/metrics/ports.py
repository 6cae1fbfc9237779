"""What the metrics use cases depend on; adapters implement these for MongoDB, Kafka, the
approval service and the platforms, tests with in-memory fakes."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from metrics.domain import Plan, PullReason, PullStatus
from shared.credentials import OAuthTokens, StoredCredentials
from shared.events import Event, Platform


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class TrackedPost:
    """A published post whose insights this service keeps, with its next automatic pull."""

    post_id: str
    workspace_id: str
    correlation_id: str
    asset_id: str
    platform: Platform
    account_id: str
    remote_id: str
    campaign: str | None
    published_at: datetime
    partition: int
    plan: Plan | None  # None: no more automatic pulls (old, deleted or unsupported)
    status: PullStatus = PullStatus.PENDING
    snapshots: int = 0  # how many snapshots are stored; the next one is number snapshots + 1

    @property
    def key(self) -> str:
        return self.post_id


@dataclass(frozen=True)
class PullRecord:
    """What one pull found, ready to be stored."""

    post: TrackedPost
    attempted_at: datetime
    reason: PullReason
    status: PullStatus
    note: str | None = None
    metrics: dict[str, int | None] | None = None  # None: the pull gave no answer to store
    raw: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class Snapshot:
    seq: int
    collected_at: datetime
    reason: str
    status: str
    metrics: dict[str, int | None]
    raw: dict[str, Any]


@dataclass(frozen=True)
class PostView:
    """A post as readers see it: latest values with their collection time, status, next pull."""

    post: TrackedPost
    metrics: dict[str, int | None] | None
    collected_at: datetime | None
    collected_reason: str | None
    status_note: str | None
    last_attempt_at: datetime | None
    last_refresh_at: datetime | None
    snapshots: int


@dataclass(frozen=True)
class RollupEntry:
    post_id: str
    platform: str
    account_id: str
    campaign: str | None
    published_at: datetime
    metrics: dict[str, int | None] | None


class MetricsStore(Protocol):
    async def add(self, posts: Sequence[TrackedPost]) -> set[str]:
        """Insert newly published posts; returns the ids that were already known (left untouched)."""
        ...

    async def load_active(self, partitions: Collection[int]) -> list[TrackedPost]:
        """Every post of these partitions with a planned pull still to run."""
        ...

    async def get(self, post_id: str) -> PostView | None: ...

    async def record_pulls(self, pulls: Sequence[tuple[PullRecord, TrackedPost | None]]) -> dict[str, int]:
        """Store pulls' outcomes in bulk, each with its post's next planned pull (None: a refresh,
        the plan stays). With values, a snapshot, and the latest values if none newer are stored.
        Returns each stored snapshot's post and number."""
        ...

    async def claim_refresh(self, post_id: str, now: datetime | None, previous: datetime | None) -> bool:
        """Compare-and-set of the post's last refresh time: only one of two racing refreshes wins."""
        ...

    async def history(self, post_id: str, limit: int, before_seq: int | None) -> list[Snapshot]: ...

    async def asset_posts(self, asset_id: str) -> list[str]: ...

    async def rollup_entries(self, workspace_id: str, start: datetime, end: datetime) -> list[RollupEntry]: ...


@dataclass(frozen=True)
class TrackedAccount:
    """A connected account whose daily snapshot this service takes, with its next one."""

    account_id: str
    workspace_id: str
    platform: Platform
    partition: int  # of accounts.status-changed.v1, which is keyed by account
    plan: Plan | None  # None: no snapshots (the platform has no account metrics here)
    status: PullStatus = PullStatus.PENDING

    @property
    def key(self) -> str:
        return self.account_id


@dataclass(frozen=True)
class AccountRecord:
    """What one account snapshot found, ready to be stored."""

    account: TrackedAccount
    attempted_at: datetime
    reason: PullReason
    status: PullStatus
    note: str | None = None
    metrics: dict[str, int | None] | None = None  # None: no answer to store
    raw: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class AccountView:
    account: TrackedAccount
    metrics: dict[str, int | None] | None
    collected_at: datetime | None
    collected_reason: str | None
    status_note: str | None
    last_attempt_at: datetime | None
    snapshots: int


class AccountStore(Protocol):
    async def add(self, accounts: Sequence[TrackedAccount]) -> set[str]:
        """Insert newly seen accounts; returns the ids that were already known (left untouched)."""
        ...

    async def load_active(self, partitions: Collection[int]) -> list[TrackedAccount]: ...

    async def get(self, account_id: str) -> AccountView | None: ...

    async def save_plan(self, account: TrackedAccount) -> None: ...

    async def record(self, record: AccountRecord) -> None:
        """Store a snapshot's outcome; with values, a snapshot and the latest values."""
        ...

    async def history(self, account_id: str, limit: int, before_seq: int | None) -> list[Snapshot]: ...


class Credentials(Protocol):
    async def load(self, account_id: str) -> StoredCredentials: ...

    async def load_many(self, account_ids: Collection[str]) -> dict[str, StoredCredentials]: ...

    async def replace_tokens(self, account_id: str, tokens: OAuthTokens, *, expected_version: int) -> int: ...


class EventSink(Protocol):
    async def emit(self, events: Sequence[tuple[str, Event, str]]) -> None: ...


class PublishingBacklog(Protocol):
    async def unfinished(self) -> int | None:
        """Due posts the publishers have not finished, over every platform; None if unknown."""
        ...
