"""What the publisher's use cases depend on; adapters implement these for MongoDB and Kafka,
tests with in-memory fakes. Platform clients are ports too (`platforms.base.PlatformClient`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from publisher.domain import RateWindow, Verdict
from shared.credentials import OAuthTokens, StoredCredentials
from shared.events import AccountStatus, Event

Outgoing = tuple[str, Event, str]  # topic, event, key


class Clock(Protocol):
    def now(self) -> datetime: ...


class EventSink(Protocol):
    async def emit(self, events: Sequence[Outgoing]) -> None:
        """Publish (topic, event, key) items and wait until the broker has them all."""
        ...


class ClaimState(StrEnum):
    NEW = "new"  # ours: nobody tried this attempt before
    TAKEN_OVER = "taken_over"  # tried before, no outcome, lease expired: ours now, reconcile first
    BUSY = "busy"  # another live worker holds the lease
    DONE = "done"  # the outcome is recorded: repeat its events


@dataclass(frozen=True)
class RecordedOutcome:
    post_id: str
    attempt: int
    verdict: Verdict
    failures: int  # failed attempts of the post so far (for the retry budget)
    events: list[Outgoing]
    remote_id: str | None = None


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    claimed_at: datetime
    checkpoint: Mapping[str, str] = field(default_factory=dict)
    outcome: RecordedOutcome | None = None
    lease_until: datetime | None = None


@dataclass(frozen=True)
class History:
    published: RecordedOutcome | None  # the post went live on an earlier attempt
    failures: int  # failed attempts before this one


class LeaseLost(Exception):
    """Someone took the attempt over (our lease had expired): stop before anything goes live."""


class AttemptStalled(Exception):
    """An attempt ran past its deadline and was abandoned without an outcome. It is not retried
    blindly: its lease runs out and the next claim takes it over and reconciles it."""


class Ledger(Protocol):
    """The attempt ledger: at most one publish call per (post, attempt)."""

    async def claim(self, post_id: str, attempt: int, *, account_id: str, owner: str, lease_until: datetime,
                    now: datetime) -> Claim: ...  # fmt: skip

    async def save_checkpoint(self, post_id: str, attempt: int, *, owner: str, ids: Mapping[str, str]) -> None:
        """Durably add intermediate platform ids; LeaseLost if the attempt is no longer ours."""
        ...

    async def renew(self, post_id: str, attempt: int, *, owner: str, lease_until: datetime) -> bool: ...

    async def history(self, post_id: str, attempt: int) -> History: ...

    async def earlier_checkpoint(self, post_id: str, attempt: int) -> Mapping[str, str]:
        """The ids the attempt before `attempt` saved, unless it failed for good (then nothing:
        a person's retry starts over)."""
        ...

    async def record(self, outcome: RecordedOutcome) -> None:
        """Store the outcome (before its events are emitted)."""
        ...


class RateStore(Protocol):
    async def load(self, platform: str, account_id: str) -> RateWindow: ...

    async def preload(self, platform: str, account_ids: Collection[str]) -> None:
        """Load these accounts' windows in as few reads as it can, ahead of their `load`."""
        ...

    def changed(self, platform: str, account_id: str, window: RateWindow) -> None:
        """Mark the window for the next flush."""
        ...

    async def flush(self) -> None: ...

    async def take_app_slot(self, platform: str, limit: int, window_seconds: float, now: float) -> float | None:
        """Count one post against the app-wide budget; the reset (epoch s) instead if none is left."""
        ...


class Vault(Protocol):
    """The shared credentials store (shared.credentials.CredentialStore)."""

    async def load(self, account_id: str) -> StoredCredentials: ...

    async def load_many(self, account_ids: Collection[str]) -> dict[str, StoredCredentials]: ...

    async def replace_tokens(self, account_id: str, tokens: OAuthTokens, *, expected_version: int) -> int: ...

    async def change_status(self, account_id: str, status: AccountStatus, *, expected: AccountStatus) -> bool: ...

    async def set_identity(
        self, account_id: str, *, external_id: str, profile: dict[str, Any] | None = None
    ) -> None: ...
