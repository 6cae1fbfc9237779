"""What the handlers need from the outside world, as Protocols (MongoDB adapters and in-memory fakes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, Protocol

from approval.autopilot import ApprovalPolicy, PolicyChange
from approval.domain import Account, ApiKey, Asset, AssetState, AttemptEntry, PostStatus, PostView, Workspace
from approval.media import ProbedMedia
from approval.slots import Slot
from shared.credentials import OAuthTokens
from shared.events import AccountStatus, Event, MediaRef, Platform


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class Outgoing:
    """An event to publish, where, and under which key."""

    topic: str
    event: Event
    key: str
    outbox_of: str | None = None  # the asset whose outbox holds it until it is published


@dataclass(frozen=True)
class Page:
    offset: int = 0
    limit: int = 50


SortOrder = Literal["asc", "desc"]


@dataclass(frozen=True)
class AssetQuery:
    state: AssetState | None = None  # None: every state but drafts (they are not on the board)
    campaign: str | None = None
    deleted: bool = False
    sort: Literal["created_at", "updated_at"] = "created_at"
    order: SortOrder = "desc"


@dataclass(frozen=True)
class PostQuery:
    asset_id: str | None = None
    account_id: str | None = None
    platform: Platform | None = None
    statuses: Sequence[PostStatus] = ()
    campaign: str | None = None
    due_from: datetime | None = None
    due_before: datetime | None = None
    order: SortOrder = "asc"


class WorkspaceRepository(Protocol):
    async def add(self, workspace: Workspace) -> None: ...
    async def get(self, workspace_id: str) -> Workspace | None: ...
    async def save(self, workspace: Workspace) -> None: ...


class ApiKeyRepository(Protocol):
    async def add(self, key: ApiKey) -> None: ...
    async def get(self, key_id: str) -> ApiKey | None: ...
    async def search(self, workspace_id: str, page: Page) -> list[ApiKey]: ...
    async def save(self, key: ApiKey) -> None: ...


class AccountRepository(Protocol):
    async def add(self, account: Account) -> None: ...
    async def get(self, workspace_id: str, account_id: str) -> Account | None: ...
    async def get_any(self, account_id: str) -> Account | None: ...
    async def search(
        self, workspace_id: str, page: Page, platform: Platform | None, status: AccountStatus | None
    ) -> list[Account]: ...
    async def save(self, account: Account) -> None: ...


class AssetRepository(Protocol):
    async def add(self, asset: Asset, outbox: Sequence[Outgoing] = ()) -> None: ...
    async def get(self, workspace_id: str, asset_id: str) -> Asset | None: ...
    async def get_any(self, asset_id: str) -> Asset | None: ...
    async def search(self, workspace_id: str, query: AssetQuery, page: Page) -> list[Asset]: ...
    async def save(self, asset: Asset, *, expected_updated_at: datetime, outbox: Sequence[Outgoing] = ()) -> bool:
        """Write `asset` if nobody changed it since `expected_updated_at` (compare-and-set), with
        the events to publish stored in the same document write. False if someone else won."""
        ...

    async def outbox_done(self, asset_id: str, event_ids: Sequence[str]) -> None: ...
    async def pending_outbox(self, older_than: datetime) -> list[tuple[str, list[Outgoing]]]: ...
    async def set_post_statuses(self, statuses: Sequence[tuple[str, str, PostStatus]]) -> None:
        """Record (asset_id, post_id, status) on each asset; a later entry for a post wins."""
        ...

    async def purge_deleted(self, before: datetime) -> list[Asset]: ...


class PostRepository(Protocol):
    async def add_pending(self, posts: Sequence[PostView]) -> None:
        """Insert posts that do not exist yet; existing ones are left as they are."""
        ...

    async def get(self, workspace_id: str, post_id: str) -> PostView | None: ...
    async def get_any(self, post_id: str) -> PostView | None: ...
    async def get_many(self, post_ids: Sequence[str]) -> list[PostView]: ...
    async def search(self, workspace_id: str, query: PostQuery, page: Page) -> list[PostView]: ...
    async def replace(self, post: PostView, *, expected: PostView | None) -> bool:
        """Compare-and-set on the previous version (insert when `expected` is None)."""
        ...

    async def replace_many(self, changes: Sequence[tuple[PostView, PostView | None]]) -> set[str]:
        """`replace` for each (post, expected), in bulk. Returns the ids of posts that may not
        have been written because another writer got there first (a superset: fold again)."""
        ...

    async def delete_many(self, post_ids: Sequence[str]) -> None: ...


class AttemptRepository(Protocol):
    """Each post's attempt history."""

    async def add_many(self, entries: Sequence[AttemptEntry]) -> None:
        """Store each entry once: a redelivered event (same event_id) changes nothing."""
        ...

    async def of_post(self, post_id: str) -> list[AttemptEntry]:
        """The post's entries in attempt order."""
        ...

    async def delete_of_posts(self, post_ids: Sequence[str]) -> None: ...


class CredentialVault(Protocol):
    async def save(
        self,
        *,
        account_id: str,
        workspace_id: str,
        platform: str,
        tokens: OAuthTokens,
        status: AccountStatus = AccountStatus.ACTIVE,
        external_id: str | None = None,
        profile: dict[str, Any] | None = None,
    ) -> int: ...
    async def mark_status(self, account_id: str, status: AccountStatus) -> None: ...
    async def expiring_by_platform(self, before: datetime) -> dict[str, int]:
        """Active accounts per platform whose token expires before then and cannot be refreshed."""
        ...


class PolicyRepository(Protocol):
    async def get_many(self, workspace_id: str, policy_ids: Sequence[str]) -> list[ApprovalPolicy]: ...
    async def search(self, workspace_id: str, page: Page) -> list[ApprovalPolicy]: ...
    async def save(self, policy: ApprovalPolicy) -> None: ...
    async def add_change(self, change: PolicyChange) -> None: ...
    async def changes(self, workspace_id: str, page: Page) -> list[PolicyChange]: ...
    async def claim_daily(self, workspace_id: str, policy_id: str, day: date, cap: int) -> bool:
        """Count one auto-approval against the policy's cap for `day`; False when the cap is reached."""
        ...

    async def release_daily(self, workspace_id: str, policy_id: str, day: date) -> None: ...


@dataclass(frozen=True)
class SlotQuery:
    account_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    empty_only: bool = False


class SlotRepository(Protocol):
    async def add(self, slot: Slot) -> None: ...
    async def get(self, workspace_id: str, slot_id: str) -> Slot | None: ...
    async def search(self, workspace_id: str, query: SlotQuery, page: Page) -> list[Slot]: ...
    async def save(self, slot: Slot, *, expected_updated_at: datetime) -> bool:
        """Compare-and-set on `updated_at`; False if someone else changed the slot first."""
        ...

    async def delete(self, workspace_id: str, slot_id: str) -> bool: ...


class MediaProbe(Protocol):
    async def probe(self, media: MediaRef) -> ProbedMedia:
        """Measure the file at media.url; raises MediaUnreachable or MediaUnreadable."""
        ...
