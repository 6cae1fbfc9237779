"""In-memory adapters for the approval handlers: the same ports as MongoDB, held in dicts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from approval.autopilot import ApprovalPolicy, PolicyChange
from approval.domain import Account, ApiKey, Asset, AssetState, AttemptEntry, PostStatus, PostView, Workspace
from approval.handlers import Ports
from approval.media import MediaProbeError, ProbedMedia
from approval.ports import AssetQuery, Outgoing, Page, PostQuery, SlotQuery
from approval.slots import Slot
from shared.credentials import OAuthTokens
from shared.events import AccountStatus, MediaRef, Platform


class FakeClock:
    def __init__(self, now: datetime = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        self.current += timedelta(**kwargs)


class FakeWorkspaces:
    def __init__(self) -> None:
        self.items: dict[str, Workspace] = {}

    async def add(self, workspace: Workspace) -> None:
        self.items[workspace.workspace_id] = workspace

    async def get(self, workspace_id: str) -> Workspace | None:
        return self.items.get(workspace_id)

    async def save(self, workspace: Workspace) -> None:
        self.items[workspace.workspace_id] = workspace


class FakeKeys:
    def __init__(self) -> None:
        self.items: dict[str, ApiKey] = {}

    async def add(self, key: ApiKey) -> None:
        self.items[key.key_id] = key

    async def get(self, key_id: str) -> ApiKey | None:
        return self.items.get(key_id)

    async def search(self, workspace_id: str, page: Page) -> list[ApiKey]:
        found = [k for k in self.items.values() if k.workspace_id == workspace_id]
        return found[page.offset : page.offset + page.limit]

    async def save(self, key: ApiKey) -> None:
        self.items[key.key_id] = key


class FakeAccounts:
    def __init__(self) -> None:
        self.items: dict[str, Account] = {}

    async def add(self, account: Account) -> None:
        self.items[account.account_id] = account

    async def get(self, workspace_id: str, account_id: str) -> Account | None:
        account = self.items.get(account_id)
        return account if account and account.workspace_id == workspace_id else None

    async def get_any(self, account_id: str) -> Account | None:
        return self.items.get(account_id)

    async def search(
        self, workspace_id: str, page: Page, platform: Platform | None, status: AccountStatus | None
    ) -> list[Account]:
        found = [
            a
            for a in self.items.values()
            if a.workspace_id == workspace_id and platform in (None, a.platform) and status in (None, a.status)
        ]
        return found[page.offset : page.offset + page.limit]

    async def save(self, account: Account) -> None:
        self.items[account.account_id] = account


class FakeAssets:
    def __init__(self) -> None:
        self.items: dict[str, Asset] = {}
        self.outbox: dict[str, list[Outgoing]] = {}

    async def add(self, asset: Asset, outbox: Sequence[Outgoing] = ()) -> None:
        self.items[asset.asset_id] = asset.model_copy(deep=True)
        self.outbox.setdefault(asset.asset_id, []).extend(outbox)

    async def get(self, workspace_id: str, asset_id: str) -> Asset | None:
        asset = self.items.get(asset_id)
        return asset.model_copy(deep=True) if asset and asset.workspace_id == workspace_id else None

    async def get_any(self, asset_id: str) -> Asset | None:
        asset = self.items.get(asset_id)
        return asset.model_copy(deep=True) if asset else None

    async def search(self, workspace_id: str, query: AssetQuery, page: Page) -> list[Asset]:
        found = [
            a
            for a in self.items.values()
            if a.workspace_id == workspace_id
            and (a.deleted_at is not None) == query.deleted
            and (a.state == query.state if query.state else a.state is not AssetState.DRAFT)
            and query.campaign in (None, a.campaign)
        ]
        found.sort(key=lambda a: getattr(a, query.sort), reverse=query.order == "desc")
        return found[page.offset : page.offset + page.limit]

    async def save(self, asset: Asset, *, expected_updated_at: datetime, outbox: Sequence[Outgoing] = ()) -> bool:
        stored = self.items.get(asset.asset_id)
        if stored is None or stored.updated_at != expected_updated_at:
            return False
        self.items[asset.asset_id] = asset.model_copy(deep=True)
        self.outbox.setdefault(asset.asset_id, []).extend(outbox)
        return True

    async def outbox_done(self, asset_id: str, event_ids: Sequence[str]) -> None:
        self.outbox[asset_id] = [o for o in self.outbox.get(asset_id, []) if str(o.event.event_id) not in event_ids]

    async def pending_outbox(self, older_than: datetime) -> list[tuple[str, list[Outgoing]]]:
        return [(k, list(v)) for k, v in self.outbox.items() if v]

    async def set_post_statuses(self, statuses: Sequence[tuple[str, str, PostStatus]]) -> None:
        for asset_id, post_id, status in statuses:
            if asset_id in self.items:
                self.items[asset_id].post_statuses[post_id] = status

    async def purge_deleted(self, before: datetime) -> list[Asset]:
        gone = [a for a in self.items.values() if a.deleted_at is not None and a.deleted_at < before]
        for asset in gone:
            del self.items[asset.asset_id]
        return gone


class FakePosts:
    def __init__(self) -> None:
        self.items: dict[str, PostView] = {}

    async def add_pending(self, posts: Sequence[PostView]) -> None:
        for post in posts:
            self.items.setdefault(post.post_id, post)

    async def get(self, workspace_id: str, post_id: str) -> PostView | None:
        post = self.items.get(post_id)
        return post if post and post.workspace_id == workspace_id else None

    async def get_any(self, post_id: str) -> PostView | None:
        return self.items.get(post_id)

    async def get_many(self, post_ids: Sequence[str]) -> list[PostView]:
        return [self.items[p] for p in post_ids if p in self.items]

    async def search(self, workspace_id: str, query: PostQuery, page: Page) -> list[PostView]:
        found = [
            p
            for p in self.items.values()
            if p.workspace_id == workspace_id
            and query.asset_id in (None, p.asset_id)
            and query.account_id in (None, p.account_id)
            and query.platform in (None, p.platform)
            and (not query.statuses or p.status in query.statuses)
            and query.campaign in (None, p.campaign)
            and (query.due_from is None or (p.due_at is not None and p.due_at >= query.due_from))
            and (query.due_before is None or (p.due_at is not None and p.due_at < query.due_before))
        ]
        return found[page.offset : page.offset + page.limit]

    async def replace(self, post: PostView, *, expected: PostView | None) -> bool:
        stored = self.items.get(post.post_id)
        if (expected is None) != (stored is None) or (stored and expected and stored.rev != expected.rev):
            return False
        self.items[post.post_id] = post
        return True

    async def replace_many(self, changes: Sequence[tuple[PostView, PostView | None]]) -> set[str]:
        return {post.post_id for post, expected in changes if not await self.replace(post, expected=expected)}

    async def delete_many(self, post_ids: Sequence[str]) -> None:
        for post_id in post_ids:
            self.items.pop(post_id, None)


class FakeAttempts:
    def __init__(self) -> None:
        self.items: dict[str, AttemptEntry] = {}  # by event_id

    async def add_many(self, entries: Sequence[AttemptEntry]) -> None:
        for entry in entries:
            self.items.setdefault(entry.event_id, entry)

    async def of_post(self, post_id: str) -> list[AttemptEntry]:
        return sorted((e for e in self.items.values() if e.post_id == post_id), key=lambda e: (e.attempt, e.at))

    async def delete_of_posts(self, post_ids: Sequence[str]) -> None:
        self.items = {k: e for k, e in self.items.items() if e.post_id not in post_ids}


@dataclass
class FakeVault:
    """Same keywords as shared.credentials.CredentialStore.save; identity is kept unless given."""

    saved: dict[str, OAuthTokens] = field(default_factory=dict)
    statuses: dict[str, AccountStatus] = field(default_factory=dict)
    external_ids: dict[str, str] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    platforms: dict[str, str] = field(default_factory=dict)

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
    ) -> int:
        self.saved[account_id] = tokens
        self.statuses[account_id] = status
        self.platforms[account_id] = platform
        if external_id is not None:
            self.external_ids[account_id] = external_id
        if profile is not None:
            self.profiles[account_id] = profile
        return len(self.saved)

    async def mark_status(self, account_id: str, status: AccountStatus) -> None:
        self.statuses[account_id] = status

    async def expiring_by_platform(self, before: datetime) -> dict[str, int]:
        counts: dict[str, int] = {}
        for account_id, tokens in self.saved.items():
            dying = tokens.refresh_token is None and tokens.expires_at is not None and tokens.expires_at < before
            if dying and self.statuses[account_id] is AccountStatus.ACTIVE:
                platform = self.platforms[account_id]
                counts[platform] = counts.get(platform, 0) + 1
        return counts


class FakePolicies:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], ApprovalPolicy] = {}
        self.audit: list[PolicyChange] = []
        self.usage: dict[tuple[str, str, date], int] = {}

    async def get_many(self, workspace_id: str, policy_ids: Sequence[str]) -> list[ApprovalPolicy]:
        return [self.items[(workspace_id, p)] for p in policy_ids if (workspace_id, p) in self.items]

    async def search(self, workspace_id: str, page: Page) -> list[ApprovalPolicy]:
        found = [p for (ws, _), p in sorted(self.items.items()) if ws == workspace_id]
        return found[page.offset : page.offset + page.limit]

    async def save(self, policy: ApprovalPolicy) -> None:
        self.items[(policy.workspace_id, policy.policy_id)] = policy

    async def add_change(self, change: PolicyChange) -> None:
        self.audit.append(change)

    async def changes(self, workspace_id: str, page: Page) -> list[PolicyChange]:
        found = [c for c in reversed(self.audit) if c.workspace_id == workspace_id]
        return found[page.offset : page.offset + page.limit]

    async def claim_daily(self, workspace_id: str, policy_id: str, day: date, cap: int) -> bool:
        key = (workspace_id, policy_id, day)
        if self.usage.get(key, 0) >= cap:
            return False
        self.usage[key] = self.usage.get(key, 0) + 1
        return True

    async def release_daily(self, workspace_id: str, policy_id: str, day: date) -> None:
        key = (workspace_id, policy_id, day)
        self.usage[key] = max(self.usage.get(key, 0) - 1, 0)


class FakeSlots:
    def __init__(self) -> None:
        self.items: dict[str, Slot] = {}

    async def add(self, slot: Slot) -> None:
        self.items[slot.slot_id] = slot

    async def get(self, workspace_id: str, slot_id: str) -> Slot | None:
        slot = self.items.get(slot_id)
        return slot if slot and slot.workspace_id == workspace_id else None

    async def search(self, workspace_id: str, query: SlotQuery, page: Page) -> list[Slot]:
        found = sorted(
            (
                s
                for s in self.items.values()
                if s.workspace_id == workspace_id
                and query.account_id in (None, s.account_id)
                and not (query.empty_only and s.asset_id is not None)
                and (query.start is None or s.at >= query.start)
                and (query.end is None or s.at <= query.end)
            ),
            key=lambda s: s.at,
        )
        return found[page.offset : page.offset + page.limit]

    async def save(self, slot: Slot, *, expected_updated_at: datetime) -> bool:
        stored = self.items.get(slot.slot_id)
        if stored is None or stored.updated_at != expected_updated_at:
            return False
        self.items[slot.slot_id] = slot
        return True

    async def delete(self, workspace_id: str, slot_id: str) -> bool:
        if await self.get(workspace_id, slot_id) is None:
            return False
        del self.items[slot_id]
        return True


class FakeMediaProbe:
    """Answers from `files` by URL (a measurement or the error to raise); any other URL is taken
    to be exactly what its metadata says."""

    def __init__(self) -> None:
        self.files: dict[str, ProbedMedia | MediaProbeError] = {}
        self.probed: list[str] = []

    async def probe(self, media: MediaRef) -> ProbedMedia:
        self.probed.append(media.url)
        found = self.files.get(media.url)
        if isinstance(found, MediaProbeError):
            raise found
        return found or ProbedMedia(
            kind=media.type,
            mime_type=media.mime_type,
            width=media.width,
            height=media.height,
            duration_seconds=media.duration_seconds,
            size_bytes=media.size_bytes,
        )


def fake_ports(clock: FakeClock | None = None) -> Ports:
    return Ports(
        workspaces=FakeWorkspaces(),
        keys=FakeKeys(),
        accounts=FakeAccounts(),
        assets=FakeAssets(),
        posts=FakePosts(),
        attempts=FakeAttempts(),
        vault=FakeVault(),
        clock=clock or FakeClock(),
        policies=FakePolicies(),
        slots=FakeSlots(),
        media=FakeMediaProbe(),
    )
