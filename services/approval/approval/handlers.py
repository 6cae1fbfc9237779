"""Use cases of the approval service: load through ports, apply the domain rules, save, return events."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from uuid import uuid4

from approval import autopilot, domain, slots
from approval.autopilot import ApprovalPolicy, PolicyChange, PolicyRules, PolicyScope
from approval.domain import (
    Account,
    ApiKey,
    Asset,
    AssetAction,
    AssetState,
    AssetVersion,
    AttemptEntry,
    Conflict,
    Forbidden,
    InvalidContent,
    NotFound,
    PendingEdits,
    PostStatus,
    PostView,
    Role,
    TargetSpec,
    Violation,
    Workspace,
)
from approval.media import MediaProbeError, claim_mismatches
from approval.media import measured as media_facts
from approval.ports import (
    AccountRepository,
    ApiKeyRepository,
    AssetQuery,
    AssetRepository,
    AttemptRepository,
    Clock,
    CredentialVault,
    MediaProbe,
    Outgoing,
    Page,
    PolicyRepository,
    PostQuery,
    PostRepository,
    SlotQuery,
    SlotRepository,
    WorkspaceRepository,
)
from approval.slots import Slot
from shared import topics
from shared.credentials import OAuthTokens
from shared.events import (
    AccountStatus,
    AccountStatusChanged,
    AccountVerifyRequested,
    AssetApproved,
    AssetRejected,
    Event,
    MediaRef,
    Platform,
    PostCancelRequested,
    PostFormat,
    PostRescheduleRequested,
    PostRetryRequested,
    RegenerationRequested,
    Schedule,
    Target,
)
from shared.ids import post_id_for
from shared.logging import get_logger

log = get_logger(__name__)

PRODUCER = "approval"
KEY_PREFIX = "sp"
CALENDAR_MAX_DAYS = 93
CALENDAR_MAX_SLOTS = 500


@dataclass
class Ports:
    workspaces: WorkspaceRepository
    keys: ApiKeyRepository
    accounts: AccountRepository
    assets: AssetRepository
    posts: PostRepository
    attempts: AttemptRepository
    vault: CredentialVault
    clock: Clock
    policies: PolicyRepository
    slots: SlotRepository
    media: MediaProbe | None  # None: media is not probed (metadata is trusted)


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key of one workspace, with its role."""

    key_id: str
    workspace_id: str
    role: Role

    def require(self, needed: Role) -> None:
        if not domain.role_allows(self.role, needed):
            raise Forbidden(f"this needs the {needed.value} role; the API key has {self.role.value}")


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid4().hex}"


def _hash_secret(secret: str) -> str:
    # API key secrets are 256 random bits, so a plain SHA-256 is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


def _issue_key(workspace_id: str, name: str, role: Role, now: datetime, by: str | None) -> tuple[ApiKey, str]:
    key_id = uuid4().hex[:16]
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        key_id=key_id,
        workspace_id=workspace_id,
        name=name,
        role=role,
        secret_hash=_hash_secret(secret),
        created_at=now,
        created_by=by,
    )
    return key, f"{KEY_PREFIX}_{key_id}_{secret}"


# ------------------------------------------------------------------------------------------------
# Workspaces and access


async def bootstrap_workspace(ports: Ports, *, name: str, timezone: str, admin_key_name: str) -> tuple[Workspace, str]:
    if why := domain.validate_timezone(timezone):
        raise InvalidContent(why, code="invalid_timezone", violations=[Violation("invalid_timezone", why)])
    now = ports.clock.now()
    workspace = Workspace(workspace_id=_new_id("ws"), name=name, timezone=timezone, created_at=now, updated_at=now)
    await ports.workspaces.add(workspace)
    key, plaintext = _issue_key(workspace.workspace_id, admin_key_name, Role.ADMIN, now, by="bootstrap")
    await ports.keys.add(key)
    log.info("workspace created", workspace_id=workspace.workspace_id, key_id=key.key_id)
    return workspace, plaintext


async def authenticate(ports: Ports, presented: str | None) -> Principal:
    """The principal behind an API key `sp_<key_id>_<secret>`; Forbidden-free: unknown means 401."""
    parts = (presented or "").split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        raise Unauthenticated("missing or malformed API key: send 'Authorization: Bearer sp_<id>_<secret>'")
    key = await ports.keys.get(parts[1])
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.secret_hash, _hash_secret(parts[2])):
        raise Unauthenticated("unknown or revoked API key")
    return Principal(key.key_id, key.workspace_id, key.role)


class Unauthenticated(domain.DomainError):
    code = "unauthenticated"
    status = 401


async def get_workspace(ports: Ports, principal: Principal) -> Workspace:
    workspace = await ports.workspaces.get(principal.workspace_id)
    if workspace is None:
        raise NotFound("workspace not found")
    return workspace


async def update_workspace(
    ports: Ports,
    principal: Principal,
    *,
    name: str | None = None,
    timezone: str | None = None,
    publishing_enabled: bool | None = None,
    pending_edits: PendingEdits | None = None,
) -> Workspace:
    principal.require(Role.ADMIN)
    workspace = await get_workspace(ports, principal)
    if timezone is not None and (why := domain.validate_timezone(timezone)):
        raise InvalidContent(why, code="invalid_timezone", violations=[Violation("invalid_timezone", why)])
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "name": name,
            "timezone": timezone,
            "publishing_enabled": publishing_enabled,
            "pending_edits": pending_edits,
        }.items()
        if v is not None
    }
    updated = workspace.model_copy(update={**changes, "updated_at": ports.clock.now()})
    await ports.workspaces.save(updated)
    if publishing_enabled is not None and publishing_enabled != workspace.publishing_enabled:
        log.info("publishing switched", workspace_id=workspace.workspace_id, enabled=publishing_enabled)
    return updated


async def create_key(ports: Ports, principal: Principal, *, name: str, role: Role) -> tuple[ApiKey, str]:
    principal.require(Role.ADMIN)
    key, plaintext = _issue_key(principal.workspace_id, name, role, ports.clock.now(), by=principal.key_id)
    await ports.keys.add(key)
    return key, plaintext


async def list_keys(ports: Ports, principal: Principal, page: Page) -> list[ApiKey]:
    principal.require(Role.ADMIN)
    return await ports.keys.search(principal.workspace_id, page)


async def revoke_key(ports: Ports, principal: Principal, key_id: str) -> ApiKey:
    principal.require(Role.ADMIN)
    key = await ports.keys.get(key_id)
    if key is None or key.workspace_id != principal.workspace_id:
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is None:
        key = key.model_copy(update={"revoked_at": ports.clock.now()})
        await ports.keys.save(key)
    return key


# ------------------------------------------------------------------------------------------------
# Accounts


def _status_changed(
    account: Account, previous: AccountStatus | None, reason: str | None, correlation_id: str
) -> Outgoing:
    event = AccountStatusChanged(
        producer=PRODUCER,
        workspace_id=account.workspace_id,
        correlation_id=correlation_id,
        account_id=account.account_id,
        platform=account.platform,
        status=account.status,
        previous_status=previous,
        reason=reason,
        scopes=account.scopes,
    )
    return Outgoing(topics.ACCOUNTS_STATUS_CHANGED, event, account.account_id)


async def connect_account(
    ports: Ports,
    principal: Principal,
    *,
    platform: Platform,
    handle: str,
    remote_id: str | None,
    profile: dict[str, Any],
    timezone: str,
    tokens: OAuthTokens,
) -> tuple[Account, list[Outgoing]]:
    principal.require(Role.ADMIN)
    if why := domain.validate_timezone(timezone):
        raise InvalidContent(why, code="invalid_timezone", violations=[Violation("invalid_timezone", why)])
    now = ports.clock.now()
    account = Account(
        account_id=_new_id("acct"),
        workspace_id=principal.workspace_id,
        platform=platform,
        handle=handle,
        remote_id=remote_id,
        profile=profile,
        timezone=timezone,
        status_changed_at=now,
        scopes=tokens.scopes,
        token_expires_at=tokens.expires_at,
        created_at=now,
        updated_at=now,
    )
    # Tokens first: an account row never exists without its credentials.
    await ports.vault.save(
        account_id=account.account_id,
        workspace_id=account.workspace_id,
        platform=platform.value,
        tokens=tokens,
        status=AccountStatus.ACTIVE,
        **_platform_identity(account),
    )
    await ports.accounts.add(account)
    return account, [_status_changed(account, None, "connected", account.account_id)]


def _platform_identity(account: Account) -> dict[str, Any]:
    """The platform-side id and profile the publisher reads next to the tokens; only what is known,
    so a vault keeps what it had when a connect names neither."""
    identity: dict[str, Any] = {}
    if account.remote_id is not None:
        identity["external_id"] = account.remote_id
    if account.profile:
        identity["profile"] = account.profile
    return identity


async def list_accounts(
    ports: Ports, principal: Principal, page: Page, platform: Platform | None, status: AccountStatus | None
) -> list[Account]:
    return await ports.accounts.search(principal.workspace_id, page, platform, status)


async def get_account(ports: Ports, principal: Principal, account_id: str) -> Account:
    account = await ports.accounts.get(principal.workspace_id, account_id)
    if account is None:
        raise NotFound(f"account {account_id} not found")
    return account


async def update_account(
    ports: Ports, principal: Principal, account_id: str, *, handle: str | None, timezone: str | None
) -> Account:
    principal.require(Role.ADMIN)
    account = await get_account(ports, principal, account_id)
    if timezone is not None and (why := domain.validate_timezone(timezone)):
        raise InvalidContent(why, code="invalid_timezone", violations=[Violation("invalid_timezone", why)])
    changes = {k: v for k, v in {"handle": handle, "timezone": timezone}.items() if v is not None}
    account = account.model_copy(update={**changes, "updated_at": ports.clock.now()})
    await ports.accounts.save(account)
    return account


async def reconnect_account(
    ports: Ports, principal: Principal, account_id: str, *, tokens: OAuthTokens
) -> tuple[Account, list[Outgoing]]:
    """New tokens make the account active again; the event lets the scheduler release held posts."""
    principal.require(Role.ADMIN)
    account = await get_account(ports, principal, account_id)
    now = ports.clock.now()
    await ports.vault.save(
        account_id=account.account_id,
        workspace_id=account.workspace_id,
        platform=account.platform.value,
        tokens=tokens,
        status=AccountStatus.ACTIVE,
        **_platform_identity(account),
    )
    previous = account.status
    account = account.model_copy(
        update={
            "status": AccountStatus.ACTIVE,
            "status_reason": "reconnected",
            "status_changed_at": now,
            "scopes": tokens.scopes,
            "token_expires_at": tokens.expires_at,
            "updated_at": now,
        }
    )
    await ports.accounts.save(account)
    return account, [_status_changed(account, previous, "reconnected", account.account_id)]


async def verify_account(ports: Ports, principal: Principal, account_id: str) -> list[Outgoing]:
    principal.require(Role.ADMIN)
    account = await get_account(ports, principal, account_id)
    event = AccountVerifyRequested(
        producer=PRODUCER,
        workspace_id=account.workspace_id,
        correlation_id=account.account_id,
        account_id=account.account_id,
        platform=account.platform,
    )
    return [Outgoing(topics.ACCOUNTS_COMMANDS, event, account.account_id)]


async def apply_account_status(ports: Ports, event: AccountStatusChanged) -> bool:
    """Mirror a status reported by anyone (publisher, ourselves); older reports never win."""
    account = await ports.accounts.get_any(event.account_id)
    if account is None or account.workspace_id != event.workspace_id:
        return False
    if event.occurred_at <= account.status_changed_at:
        return False
    update: dict[str, Any] = {
        "status": event.status,
        "status_reason": event.reason,
        "status_changed_at": event.occurred_at,
        "updated_at": ports.clock.now(),
    }
    if event.scopes is not None:  # a report that names the grant (a reconnect, a refresh) updates it
        update["scopes"] = event.scopes
    account = account.model_copy(update=update)
    await ports.accounts.save(account)
    return True


# ------------------------------------------------------------------------------------------------
# Assets


@dataclass(frozen=True)
class AssetDraft:
    caption: str
    media: list[MediaRef]
    targets: list[TargetSpec]
    schedule: Schedule
    campaign: str | None = None
    source: str | None = None


async def _account_facts(ports: Ports, workspace_id: str, targets: Sequence[TargetSpec]) -> dict[str, Account]:
    found: dict[str, Account] = {}
    for account_id in {t.account_id for t in targets}:
        account = await ports.accounts.get(workspace_id, account_id)
        if account is not None:
            found[account_id] = account
    return found


async def _checked(ports: Ports, workspace_id: str, draft: AssetDraft) -> tuple[AssetDraft, dict[str, Account]]:
    """The draft with its media measured (when probing is on), after checking it against the
    platform limits; InvalidContent naming each target and rule otherwise."""
    accounts = await _account_facts(ports, workspace_id, draft.targets)
    problems: list[Violation] = []
    if ports.media is not None:
        media, problems = await _measure(ports.media, draft)
        draft = replace(draft, media=media)
    problems += domain.validate_asset(
        caption=draft.caption,
        media=draft.media,
        targets=draft.targets,
        schedule=draft.schedule,
        accounts={k: a.facts() for k, a in accounts.items()},
    )
    if problems:
        first = problems[0].message
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidContent(f"{first}{more}", violations=problems)
    return draft, accounts


async def _measure(probe: MediaProbe, draft: AssetDraft) -> tuple[list[MediaRef], list[Violation]]:
    """Each media file as it really is, and every way it contradicts its metadata, once per target
    (every target publishes every file)."""
    results = await asyncio.gather(*(probe.probe(m) for m in draft.media), return_exceptions=True)
    measured: list[MediaRef] = []
    problems: list[tuple[str, str]] = []
    for index, (claimed, result) in enumerate(zip(draft.media, results, strict=True)):
        label = f"media[{index}] ({claimed.url})"
        if isinstance(result, MediaProbeError):
            problems.append((result.rule, f"{label} {result.reason}"))
            measured.append(claimed)
        elif isinstance(result, BaseException):
            raise result
        else:
            problems.extend((rule, f"{label} {message}") for rule, message in claim_mismatches(claimed, result))
            measured.append(media_facts(claimed, result))
    violations = [
        Violation(rule, f"target {t.target_id}: {message}", t.target_id)
        for rule, message in problems
        for t in draft.targets
    ]
    return measured, violations


def _content(draft: AssetDraft) -> dict[str, Any]:
    return {
        "caption": draft.caption,
        "media": draft.media,
        "targets": draft.targets,
        "schedule": draft.schedule,
        "campaign": draft.campaign,
    }


async def create_asset(
    ports: Ports, principal: Principal, draft: AssetDraft, *, as_draft: bool = False
) -> tuple[Asset, list[Outgoing]]:
    """New content: a draft (saved as it is, checked when submitted) or content for approval,
    which an autopilot policy may approve at once."""
    principal.require(Role.EDITOR)
    accounts: dict[str, Account] = {}
    if not as_draft:
        draft, accounts = await _checked(ports, principal.workspace_id, draft)
    now = ports.clock.now()
    asset = Asset(
        asset_id=_new_id("asset"),
        workspace_id=principal.workspace_id,
        state=AssetState.DRAFT if as_draft else AssetState.PENDING_APPROVAL,
        source=draft.source,
        created_by=principal.key_id,
        created_at=now,
        updated_at=now,
        **_content(draft),
    )
    asset.record("created", principal.key_id, now)
    asset.snapshot(principal.key_id, now)
    await ports.assets.add(asset)
    if as_draft:
        return asset, []
    return await _autopilot(ports, asset, accounts)


async def get_asset(ports: Ports, principal: Principal, asset_id: str, *, deleted_ok: bool = False) -> Asset:
    asset = await ports.assets.get(principal.workspace_id, asset_id)
    if asset is None or (asset.deleted_at is not None and not deleted_ok):
        raise NotFound(f"asset {asset_id} not found")
    return asset


async def list_assets(ports: Ports, principal: Principal, query: AssetQuery, page: Page) -> list[Asset]:
    return await ports.assets.search(principal.workspace_id, query, page)


async def _save(ports: Ports, asset: Asset, before: datetime, outbox: Sequence[Outgoing] = ()) -> None:
    if not await ports.assets.save(asset, expected_updated_at=before, outbox=outbox):
        raise Conflict(f"asset {asset.asset_id} was changed by someone else; reload and try again")


def _check_version(asset: Asset, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != asset.version:
        raise Conflict(
            f"asset {asset.asset_id} is at version {asset.version}, not {expected_version}", code="version_mismatch"
        )


_EDIT_RECORDS = {
    AssetAction.EDIT_DRAFT: "edited",
    AssetAction.RETURN_TO_DRAFT: "returned_to_draft",
    AssetAction.SUBMIT_VERSION: "new_version",
}


async def edit_asset(
    ports: Ports, principal: Principal, asset_id: str, draft: AssetDraft, expected_version: int | None = None
) -> tuple[Asset, list[Outgoing]]:
    """New content for an asset, as its next version. A draft stays a draft; content sent back
    for regeneration returns to the queue; pending content either stays on the queue or goes back
    to draft, as the workspace prefers (`pending_edits`)."""
    principal.require(Role.EDITOR)
    asset = await get_asset(ports, principal, asset_id)
    _check_version(asset, expected_version)
    return await _edit(ports, principal, asset, draft)


async def _edit(ports: Ports, principal: Principal, asset: Asset, draft: AssetDraft) -> tuple[Asset, list[Outgoing]]:
    workspace = await get_workspace(ports, principal)
    action = domain.edit_action(asset.state, workspace.pending_edits)
    state = domain.transition(asset.state, action)
    accounts: dict[str, Account] = {}
    if state is AssetState.PENDING_APPROVAL:
        draft, accounts = await _checked(ports, principal.workspace_id, draft)
    before, now = asset.updated_at, ports.clock.now()
    asset = asset.model_copy(
        update={
            **_content(draft),
            "version": asset.version + 1,
            "state": state,
            "source": draft.source or asset.source,
            "updated_at": now,
            "feedback": None,
            "pending_reason": None,
        },
        deep=True,
    )
    asset.record(_EDIT_RECORDS[action], principal.key_id, now)
    asset.snapshot(principal.key_id, now)
    await _save(ports, asset, before)
    if state is not AssetState.PENDING_APPROVAL:
        return asset, []
    return await _autopilot(ports, asset, accounts)


async def submit(
    ports: Ports, principal: Principal, asset_id: str, expected_version: int | None = None
) -> tuple[Asset, list[Outgoing]]:
    """A draft goes on the approval queue, after the same checks as new content."""
    principal.require(Role.EDITOR)
    asset = await get_asset(ports, principal, asset_id)
    _check_version(asset, expected_version)
    state = domain.transition(asset.state, AssetAction.SUBMIT)
    content = AssetDraft(asset.caption, asset.media, asset.targets, asset.schedule, asset.campaign, asset.source)
    content, accounts = await _checked(ports, principal.workspace_id, content)
    before, now = asset.updated_at, ports.clock.now()
    asset = asset.model_copy(update={"state": state, "media": content.media, "updated_at": now}, deep=True)
    asset.record("submitted", principal.key_id, now)
    await _save(ports, asset, before)
    return await _autopilot(ports, asset, accounts)


async def versions(ports: Ports, principal: Principal, asset_id: str) -> list[AssetVersion]:
    return (await get_asset(ports, principal, asset_id)).versions


async def approve(
    ports: Ports,
    principal: Principal,
    asset_id: str,
    *,
    deselect: Sequence[str] = (),
    expected_version: int | None = None,
) -> tuple[Asset, list[Outgoing]]:
    principal.require(Role.APPROVER)
    workspace = await get_workspace(ports, principal)
    asset = await get_asset(ports, principal, asset_id)
    _check_version(asset, expected_version)
    domain.transition(asset.state, AssetAction.APPROVE)
    if not workspace.publishing_enabled:
        raise Conflict(
            "publishing is not switched on for this workspace; an admin must enable it first",
            code="publishing_disabled",
        )
    chosen = domain.select_targets(asset.targets, deselect)
    content = AssetDraft(asset.caption, asset.media, chosen, asset.schedule, asset.campaign)
    # Again: accounts, limits or the files behind the URLs may have changed since submission.
    content, accounts = await _checked(ports, principal.workspace_id, content)
    return await _approve(ports, asset, content, accounts, by=principal.key_id, deselect=deselect)


async def _approve(
    ports: Ports,
    asset: Asset,
    content: AssetDraft,
    accounts: dict[str, Account],
    *,
    by: str,
    deselect: Sequence[str] = (),
    policies: Sequence[str] = (),
) -> tuple[Asset, list[Outgoing]]:
    """Approve checked content (a person's decision, or the autopilot policies named)."""
    state = domain.transition(asset.state, AssetAction.APPROVE)
    now = ports.clock.now()
    targets = [
        Target(
            target_id=t.target_id,
            platform=accounts[t.account_id].platform,
            account_id=t.account_id,
            format=t.format,
            caption=t.caption,
            options=t.options,
            timezone=accounts[t.account_id].timezone,
        )
        for t in content.targets
    ]
    event = AssetApproved(
        producer=PRODUCER,
        workspace_id=asset.workspace_id,
        correlation_id=asset.asset_id,
        asset_id=asset.asset_id,
        version=asset.version,
        caption=asset.caption,
        media=content.media,
        targets=targets,
        schedule=asset.schedule,
        campaign=asset.campaign,
        approved_by=by,
        auto_approved=bool(policies),
        approval_policy=", ".join(policies) or None,
        approval_policies=list(policies),
    )
    # The board shows the posts at once, with their planned time, until the scheduler confirms.
    posts = [
        PostView(
            post_id=post_id_for(asset.asset_id, t.target_id),
            workspace_id=asset.workspace_id,
            asset_id=asset.asset_id,
            target_id=t.target_id,
            account_id=t.account_id,
            platform=t.platform,
            format=t.format,
            campaign=asset.campaign,
            due_at=domain.resolve_due_at(asset.schedule, t.timezone or "UTC", now),
        )
        for t in targets
    ]
    await ports.posts.add_pending(posts)
    before = asset.updated_at
    asset = asset.model_copy(
        update={
            "state": state,
            "media": content.media,
            "deselected": list(deselect),
            "decided_by": by,
            "decided_at": now,
            "updated_at": now,
            "approved_by_policies": list(policies),
            "pending_reason": None,
            "post_statuses": {p.post_id: PostStatus.PENDING for p in posts},
        },
        deep=True,
    )
    notes = [
        f"deselected: {', '.join(deselect)}" if deselect else "",
        f"by policy {', '.join(policies)}" if policies else "",
    ]
    asset.record("approved", by, now, note="; ".join(n for n in notes if n) or None)
    outgoing = [Outgoing(topics.ASSETS_APPROVED, event, asset.asset_id, outbox_of=asset.asset_id)]
    await _save(ports, asset, before, outgoing)
    return asset, outgoing


AUTOPILOT = "autopilot"


async def _autopilot(ports: Ports, asset: Asset, accounts: dict[str, Account]) -> tuple[Asset, list[Outgoing]]:
    """Approve checked, pending content when the approval policies allow it; otherwise leave it
    for a person, with the reason on the asset when a policy would have approved it."""
    ids = autopilot.applicable_policy_ids(asset.campaign, [t.account_id for t in asset.targets])
    policies = {p.policy_id: p for p in await ports.policies.get_many(asset.workspace_id, ids)}
    decision = autopilot.decide(
        source=asset.source,
        campaign=asset.campaign,
        targets=[(t, accounts[t.account_id].platform) for t in asset.targets],
        policies=policies,
    )
    if not decision.approves and decision.reason is None:
        return asset, []
    workspace = await ports.workspaces.get(asset.workspace_id)
    reason = decision.reason
    if reason is None and (workspace is None or not workspace.publishing_enabled):
        reason = "publishing is not switched on for this workspace"
    claimed: list[str] = []
    day = domain.local_time(ports.clock.now(), workspace.timezone if workspace else "UTC").date()
    for pid in decision.policies if reason is None else ():
        cap = policies[pid].daily_cap
        if cap is not None and not await ports.policies.claim_daily(asset.workspace_id, pid, day, cap):
            reason = f"policy {pid} reached its daily cap of {cap} auto-approvals"
            break
        if cap is not None:
            claimed.append(pid)
    if reason is None:
        content = AssetDraft(asset.caption, asset.media, asset.targets, asset.schedule, asset.campaign)
        try:
            return await _approve(ports, asset, content, accounts, by=AUTOPILOT, policies=decision.policies)
        except BaseException:
            await _release(ports, asset.workspace_id, claimed, day)
            raise
    await _release(ports, asset.workspace_id, claimed, day)  # what was counted before a cap refused
    before, now = asset.updated_at, ports.clock.now()
    asset = asset.model_copy(update={"pending_reason": reason, "updated_at": now}, deep=True)
    asset.record("autopilot_declined", AUTOPILOT, now, note=reason)
    await _save(ports, asset, before)
    return asset, []


async def _release(ports: Ports, workspace_id: str, policy_ids: Sequence[str], day: date) -> None:
    for pid in policy_ids:
        await ports.policies.release_daily(workspace_id, pid, day)


async def reject(
    ports: Ports,
    principal: Principal,
    asset_id: str,
    *,
    reason: str,
    discard: bool = False,
    expected_version: int | None = None,
) -> tuple[Asset, list[Outgoing]]:
    principal.require(Role.APPROVER)
    asset = await get_asset(ports, principal, asset_id)
    _check_version(asset, expected_version)
    state = domain.transition(asset.state, AssetAction.DISCARD if discard else AssetAction.REJECT)
    before, now = asset.updated_at, ports.clock.now()
    asset = asset.model_copy(
        update={"state": state, "reason": reason, "decided_by": principal.key_id, "decided_at": now, "updated_at": now},
        deep=True,
    )
    asset.record(state.value, principal.key_id, now, note=reason)
    event = AssetRejected(
        producer=PRODUCER,
        workspace_id=asset.workspace_id,
        correlation_id=asset.asset_id,
        asset_id=asset.asset_id,
        status="discarded" if discard else "rejected",
        reason=reason,
        rejected_by=principal.key_id,
    )
    outgoing = [Outgoing(topics.ASSETS_REJECTED, event, asset.asset_id, outbox_of=asset.asset_id)]
    await _save(ports, asset, before, outgoing)
    return asset, outgoing


async def request_regeneration(
    ports: Ports, principal: Principal, asset_id: str, *, feedback: str, expected_version: int | None = None
) -> tuple[Asset, list[Outgoing]]:
    principal.require(Role.APPROVER)
    asset = await get_asset(ports, principal, asset_id)
    _check_version(asset, expected_version)
    state = domain.transition(asset.state, AssetAction.REQUEST_REGENERATION)
    before, now = asset.updated_at, ports.clock.now()
    asset = asset.model_copy(update={"state": state, "feedback": feedback, "updated_at": now}, deep=True)
    asset.record("regeneration_requested", principal.key_id, now, note=feedback)
    event = RegenerationRequested(
        producer=PRODUCER,
        workspace_id=asset.workspace_id,
        correlation_id=asset.asset_id,
        asset_id=asset.asset_id,
        version=asset.version,
        feedback=feedback,
        requested_by=principal.key_id,
    )
    outgoing = [Outgoing(topics.ASSETS_REGENERATION_REQUESTED, event, asset.asset_id, outbox_of=asset.asset_id)]
    await _save(ports, asset, before, outgoing)
    return asset, outgoing


@dataclass
class BulkResult:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)  # asset_id -> (code, message)
    outgoing: list[Outgoing] = field(default_factory=list)


async def bulk_approve(ports: Ports, principal: Principal, asset_ids: Sequence[str]) -> BulkResult:
    principal.require(Role.APPROVER)
    result = BulkResult()
    for asset_id in dict.fromkeys(asset_ids):
        try:
            _, outgoing = await approve(ports, principal, asset_id)
        except domain.DomainError as exc:
            result.failed[asset_id] = (exc.code, exc.message)
        else:
            result.succeeded.append(asset_id)
            result.outgoing.extend(outgoing)
    return result


async def bulk_reject(
    ports: Ports, principal: Principal, asset_ids: Sequence[str], *, reason: str, discard: bool
) -> BulkResult:
    principal.require(Role.APPROVER)
    result = BulkResult()
    for asset_id in dict.fromkeys(asset_ids):
        try:
            _, outgoing = await reject(ports, principal, asset_id, reason=reason, discard=discard)
        except domain.DomainError as exc:
            result.failed[asset_id] = (exc.code, exc.message)
        else:
            result.succeeded.append(asset_id)
            result.outgoing.extend(outgoing)
    return result


async def bulk_delete(ports: Ports, principal: Principal, asset_ids: Sequence[str]) -> BulkResult:
    """Soft delete: hidden at once, restorable for 30 days. Content with live posts in flight
    must be cancelled first, so deleting never silently drops a scheduled post."""
    principal.require(Role.EDITOR)
    result = BulkResult()
    for asset_id in dict.fromkeys(asset_ids):
        try:
            asset = await get_asset(ports, principal, asset_id)
            in_flight = [s for s in asset.post_statuses.values() if s not in domain.TERMINAL]
            if in_flight:
                raise Conflict(
                    f"asset {asset_id} has {len(in_flight)} post(s) not yet finished; cancel them first",
                    code="posts_in_flight",
                )
            before, now = asset.updated_at, ports.clock.now()
            asset = asset.model_copy(update={"deleted_at": now, "updated_at": now}, deep=True)
            asset.record("deleted", principal.key_id, now)
            await _save(ports, asset, before)
        except domain.DomainError as exc:
            result.failed[asset_id] = (exc.code, exc.message)
        else:
            result.succeeded.append(asset_id)
    return result


async def bulk_restore(ports: Ports, principal: Principal, asset_ids: Sequence[str]) -> BulkResult:
    principal.require(Role.EDITOR)
    result = BulkResult()
    for asset_id in dict.fromkeys(asset_ids):
        try:
            asset = await get_asset(ports, principal, asset_id, deleted_ok=True)
            if asset.deleted_at is None:
                raise Conflict(f"asset {asset_id} is not deleted", code="not_deleted")
            before, now = asset.updated_at, ports.clock.now()
            asset = asset.model_copy(update={"deleted_at": None, "updated_at": now}, deep=True)
            asset.record("restored", principal.key_id, now)
            await _save(ports, asset, before)
        except domain.DomainError as exc:
            result.failed[asset_id] = (exc.code, exc.message)
        else:
            result.succeeded.append(asset_id)
    return result


async def purge_deleted(ports: Ports) -> int:
    """Remove assets (and their board rows) deleted longer ago than the retention period."""
    purged = await ports.assets.purge_deleted(ports.clock.now() - domain.SOFT_DELETE_RETENTION)
    for asset in purged:
        post_ids = [post_id_for(asset.asset_id, t.target_id) for t in asset.targets]
        await ports.posts.delete_many(post_ids)
        await ports.attempts.delete_of_posts(post_ids)
    if purged:
        log.info("soft-deleted assets purged", count=len(purged))
    return len(purged)


async def count_expiring_tokens(ports: Ports, horizon: timedelta) -> dict[str, int]:
    """Per platform, the active accounts that need a reconnect within `horizon` (for the
    `socialpub_accounts_tokens_expiring` gauge behind the alert of the same name)."""
    return await ports.vault.expiring_by_platform(ports.clock.now() + horizon)


# ------------------------------------------------------------------------------------------------
# Posts: the read model and a person's actions


async def get_post(ports: Ports, principal: Principal, post_id: str) -> PostView:
    post = await ports.posts.get(principal.workspace_id, post_id)
    if post is None:
        raise NotFound(f"post {post_id} not found")
    return post


async def post_attempts(ports: Ports, principal: Principal, post_id: str) -> list[AttemptEntry]:
    """Every attempt of the post with its outcome, error and the platform's words, oldest first."""
    post = await get_post(ports, principal, post_id)
    return await ports.attempts.of_post(post.post_id)


async def list_posts(ports: Ports, principal: Principal, query: PostQuery, page: Page) -> list[PostView]:
    return await ports.posts.search(principal.workspace_id, query, page)


async def asset_posts(ports: Ports, principal: Principal, asset_id: str) -> tuple[Asset, list[PostView]]:
    asset = await get_asset(ports, principal, asset_id)
    ids = [post_id_for(asset.asset_id, t.target_id) for t in asset.targets if t.target_id not in asset.deselected]
    posts = [p for p in await ports.posts.get_many(ids) if p.workspace_id == principal.workspace_id]
    return asset, posts


_MAX_CAS_ATTEMPTS = 20


async def apply_post_events(ports: Ports, events: Sequence[Event]) -> None:
    """Fold a batch of post events into the board, and their attempts into the posts' histories:
    one read and one bulk write per collection, not several round trips per event. Events of one
    post are applied in the order given. Idempotent."""
    pending: dict[str, list[Event]] = {}
    for event in events:
        pending.setdefault(getattr(event, "post_id", ""), []).append(event)
    current = await _board(ports, pending)
    # Before the board, and even when an event is too late to move the board: every attempt
    # stays in the history. Keyed by event_id, so a redelivery changes nothing.
    await ports.attempts.add_many(
        [entry for event in events if not _foreign(current, event) and (entry := domain.attempt_entry(event))]
    )
    for _ in range(_MAX_CAS_ATTEMPTS):
        writes = [
            (post, current.get(post_id))
            for post_id, its_events in pending.items()
            if (post := _fold(current.get(post_id), its_events)) is not None
        ]
        # Before the board: a crash between the two writes must not leave an asset's status behind
        # for ever (a redelivered event no longer moves the board, so it would not set it again).
        # A post not on the board yet is pending in its asset, which has listed it since approval.
        await ports.assets.set_post_statuses(
            [
                (p.asset_id, p.post_id, p.status)
                for p, before in writes
                if domain.aggregate_tells_apart(before.status if before else PostStatus.PENDING, p.status)
            ]
        )
        unsure = await ports.posts.replace_many(writes)
        if not unsure:
            return
        pending = {post_id: its_events for post_id, its_events in pending.items() if post_id in unsure}
        current = await _board(ports, pending)
    raise Conflict(f"posts {sorted(pending)} keep changing under us; the events will be delivered again")


async def _board(ports: Ports, post_ids: Collection[str]) -> dict[str, PostView]:
    return {post.post_id: post for post in await ports.posts.get_many(list(post_ids))}


def _foreign(board: dict[str, PostView], event: Event) -> bool:
    post = board.get(getattr(event, "post_id", ""))
    return post is not None and post.workspace_id != event.workspace_id


def _fold(current: PostView | None, events: Sequence[Event]) -> PostView | None:
    """`current` after `events` with its next revision, or None when they change nothing."""
    post = current
    for event in events:
        if post is not None and post.workspace_id != event.workspace_id:
            log.warning("post event for another workspace's post ignored", post_id=post.post_id)
            continue
        base = post or _post_from_event(event)
        if base is not None:  # None: a command rejection or metrics for a post we never saw
            post = domain.apply_post_event(base, event) or post
    if post is None or post is current:
        return None
    return post.model_copy(update={"rev": (current.rev if current else post.rev) + 1})


def _post_from_event(event: Event) -> PostView | None:
    asset_id = getattr(event, "asset_id", None)
    platform = getattr(event, "platform", None)
    account_id = getattr(event, "account_id", None)
    if not (asset_id and platform and account_id):
        return None
    return PostView(
        post_id=event.post_id,  # type: ignore[attr-defined]
        workspace_id=event.workspace_id,
        asset_id=asset_id,
        account_id=account_id,
        platform=platform,
    )


async def _record_command(ports: Ports, post: PostView, event: Event, name: str, by: str) -> None:
    command = {"name": name, "event_id": str(event.event_id), "requested_at": event.occurred_at, "requested_by": by}
    for _ in range(_MAX_CAS_ATTEMPTS):
        updated = post.model_copy(update={"last_command": command, "rev": post.rev + 1})
        if await ports.posts.replace(updated, expected=post):
            return
        fresh = await ports.posts.get(post.workspace_id, post.post_id)
        if fresh is None:
            return
        post = fresh


async def _post_for_command(ports: Ports, principal: Principal, post_id: str) -> tuple[PostView, Asset]:
    principal.require(Role.EDITOR)
    post = await get_post(ports, principal, post_id)
    asset = await get_asset(ports, principal, post.asset_id, deleted_ok=True)
    if asset.state is not AssetState.APPROVED:
        raise Conflict(f"only approved content can be scheduled; asset {asset.asset_id} is {asset.state.value}")
    return post, asset


async def reschedule_post(
    ports: Ports, principal: Principal, post_id: str, schedule: Schedule, *, publish_now: bool = False
) -> list[Outgoing]:
    post, _ = await _post_for_command(ports, principal, post_id)
    workspace = await get_workspace(ports, principal)
    if not workspace.publishing_enabled:
        raise Conflict("publishing is not switched on for this workspace", code="publishing_disabled")
    if post.status in domain.TERMINAL:
        raise Conflict(
            f"post {post_id} is {post.status.value}; only a post that has not finished can be rescheduled",
            code="post_finished",
        )
    if schedule.timezone and (why := domain.validate_timezone(schedule.timezone)):
        raise InvalidContent(why, code="invalid_timezone", violations=[Violation("invalid_timezone", why)])
    event = PostRescheduleRequested(
        producer=PRODUCER,
        workspace_id=post.workspace_id,
        correlation_id=post.asset_id,
        post_id=post.post_id,
        requested_by=principal.key_id,
        schedule=schedule,
    )
    await _record_command(ports, post, event, "publish_now" if publish_now else "reschedule", principal.key_id)
    return [Outgoing(topics.POSTS_COMMANDS, event, post.post_id)]


async def publish_now(ports: Ports, principal: Principal, post_id: str) -> list[Outgoing]:
    return await reschedule_post(ports, principal, post_id, Schedule(publish_now=True), publish_now=True)


async def cancel_post(ports: Ports, principal: Principal, post_id: str, *, reason: str | None) -> list[Outgoing]:
    post, _ = await _post_for_command(ports, principal, post_id)
    if post.status not in domain.CANCELLABLE:
        raise Conflict(f"post {post_id} is {post.status.value} and can no longer be cancelled", code="post_finished")
    event = PostCancelRequested(
        producer=PRODUCER,
        workspace_id=post.workspace_id,
        correlation_id=post.asset_id,
        post_id=post.post_id,
        requested_by=principal.key_id,
        reason=reason,
    )
    await _record_command(ports, post, event, "cancel", principal.key_id)
    return [Outgoing(topics.POSTS_COMMANDS, event, post.post_id)]


async def retry_post(ports: Ports, principal: Principal, post_id: str) -> list[Outgoing]:
    """A person's decision to try a failed, missed or unconfirmed post again."""
    post, _ = await _post_for_command(ports, principal, post_id)
    workspace = await get_workspace(ports, principal)
    if not workspace.publishing_enabled:
        raise Conflict("publishing is not switched on for this workspace", code="publishing_disabled")
    if post.status not in domain.RETRYABLE_BY_PERSON:
        raise Conflict(
            f"post {post_id} is {post.status.value}; only failed, missed or unconfirmed posts can be retried",
            code="not_retryable",
        )
    event = PostRetryRequested(
        producer=PRODUCER,
        workspace_id=post.workspace_id,
        correlation_id=post.asset_id,
        post_id=post.post_id,
        requested_by=principal.key_id,
    )
    await _record_command(ports, post, event, "retry", principal.key_id)
    return [Outgoing(topics.POSTS_COMMANDS, event, post.post_id)]


async def calendar(
    ports: Ports,
    principal: Principal,
    *,
    start: datetime,
    end: datetime,
    query: PostQuery,
    page: Page,
) -> tuple[Workspace, list[PostView], list[Slot]]:
    """The posts due in the range (one page) and the planned slots in it (filled or gaps; on the
    first page only, up to CALENDAR_MAX_SLOTS)."""
    if end <= start:
        raise InvalidContent("the calendar range must end after it starts", code="invalid_range")
    if end - start > timedelta(days=CALENDAR_MAX_DAYS):
        raise InvalidContent(f"the calendar range is at most {CALENDAR_MAX_DAYS} days", code="range_too_large")
    workspace = await get_workspace(ports, principal)
    ranged = PostQuery(
        account_id=query.account_id,
        platform=query.platform,
        statuses=query.statuses,
        campaign=query.campaign,
        due_from=start,
        due_before=end,
        order="asc",
    )
    posts = await ports.posts.search(principal.workspace_id, ranged, page)
    slots: list[Slot] = []
    if page.offset == 0 and query.platform is None and not query.statuses and query.campaign is None:
        planned = SlotQuery(account_id=query.account_id, start=start, end=end)
        slots = await ports.slots.search(principal.workspace_id, planned, Page(limit=CALENDAR_MAX_SLOTS))
    return workspace, posts, slots


# ------------------------------------------------------------------------------------------------
# Approval policies (autopilot)


async def list_policies(ports: Ports, principal: Principal, page: Page) -> list[ApprovalPolicy]:
    return await ports.policies.search(principal.workspace_id, page)


async def set_policy(
    ports: Ports, principal: Principal, *, scope: PolicyScope, scope_id: str | None, rules: PolicyRules
) -> ApprovalPolicy:
    """Create or replace the policy of a scope. Admins only; every change is kept in the audit trail."""
    principal.require(Role.ADMIN)
    if (scope is PolicyScope.WORKSPACE) != (scope_id is None):
        why = "a workspace policy takes no scope_id; account and campaign policies need one"
        raise InvalidContent(why, code="invalid_request", violations=[Violation("scope_id", why)])
    if scope is PolicyScope.ACCOUNT:
        await get_account(ports, principal, str(scope_id))
    now = ports.clock.now()
    policy = ApprovalPolicy(
        **rules.model_dump(),
        workspace_id=principal.workspace_id,
        scope=scope,
        scope_id=scope_id,
        updated_at=now,
        updated_by=principal.key_id,
    )
    previous = await ports.policies.get_many(principal.workspace_id, [policy.policy_id])
    fields = set(PolicyRules.model_fields)
    change = PolicyChange(
        change_id=_new_id("chg"),
        workspace_id=principal.workspace_id,
        policy_id=policy.policy_id,
        at=now,
        by=principal.key_id,
        before=previous[0].model_dump(mode="json", include=fields) if previous else None,
        after=policy.model_dump(mode="json", include=fields),
    )
    # The record first: a change never takes effect unrecorded.
    await ports.policies.add_change(change)
    await ports.policies.save(policy)
    log.info("approval policy changed", workspace_id=principal.workspace_id, policy_id=policy.policy_id)
    return policy


async def policy_changes(ports: Ports, principal: Principal, page: Page) -> list[PolicyChange]:
    principal.require(Role.ADMIN)
    return await ports.policies.changes(principal.workspace_id, page)


# ------------------------------------------------------------------------------------------------
# Content plan slots


async def create_slot(
    ports: Ports, principal: Principal, *, account_id: str, at: datetime, fmt: PostFormat, brief: str
) -> Slot:
    principal.require(Role.EDITOR)
    account = await get_account(ports, principal, account_id)
    slots.check_format(account.platform, fmt)
    now = ports.clock.now()
    slot = Slot(
        slot_id=_new_id("slot"),
        workspace_id=principal.workspace_id,
        account_id=account_id,
        at=at,
        format=fmt,
        brief=brief,
        created_at=now,
        created_by=principal.key_id,
        updated_at=now,
    )
    await ports.slots.add(slot)
    return slot


async def get_slot(ports: Ports, principal: Principal, slot_id: str) -> Slot:
    slot = await ports.slots.get(principal.workspace_id, slot_id)
    if slot is None:
        raise NotFound(f"slot {slot_id} not found")
    return slot


async def list_slots(ports: Ports, principal: Principal, query: SlotQuery, page: Page) -> list[Slot]:
    return await ports.slots.search(principal.workspace_id, query, page)


async def slot_gaps(ports: Ports, principal: Principal, horizon: timedelta, page: Page) -> list[Slot]:
    """Empty slots due within `horizon`: planned posts that still have no content."""
    now = ports.clock.now()
    return await ports.slots.search(
        principal.workspace_id, SlotQuery(start=now, end=now + horizon, empty_only=True), page
    )


async def _save_slot(ports: Ports, slot: Slot, before: datetime) -> None:
    if not await ports.slots.save(slot, expected_updated_at=before):
        raise Conflict(f"slot {slot.slot_id} was changed by someone else; reload and try again")


async def update_slot(
    ports: Ports,
    principal: Principal,
    slot_id: str,
    *,
    at: datetime | None,
    fmt: PostFormat | None,
    brief: str | None,
) -> tuple[Slot, list[Outgoing]]:
    """Move a slot, change its format or brief. A filled slot's asset follows (as an edit of the
    asset), so a format its content cannot take is refused too."""
    principal.require(Role.EDITOR)
    slot = await get_slot(ports, principal, slot_id)
    if fmt is not None:
        account = await get_account(ports, principal, slot.account_id)
        slots.check_format(account.platform, fmt, slot_id=slot_id)
    changes = {k: v for k, v in {"at": at, "format": fmt, "brief": brief}.items() if v is not None}
    before = slot.updated_at
    slot = slot.model_copy(update={**changes, "updated_at": ports.clock.now()})
    outgoing: list[Outgoing] = []
    if slot.asset_id is not None and (at is not None or fmt is not None):
        asset = await get_asset(ports, principal, slot.asset_id)
        _, outgoing = await _edit(ports, principal, asset, _filled(asset, slot)[1])
    await _save_slot(ports, slot, before)
    return slot, outgoing


def _filled(asset: Asset, slot: Slot) -> tuple[str, AssetDraft]:
    target_id, targets = slots.filled_targets(asset.targets, slot)
    content = AssetDraft(asset.caption, asset.media, targets, Schedule(at_utc=slot.at), asset.campaign, asset.source)
    return target_id, content


async def fill_slot(
    ports: Ports, principal: Principal, slot_id: str, asset_id: str
) -> tuple[Slot, Asset, list[Outgoing]]:
    """Put an asset in a slot: its target for the slot's account takes the slot's format and the
    asset is scheduled at the slot's time (an edit of the asset, checked like any other)."""
    principal.require(Role.EDITOR)
    slot = await get_slot(ports, principal, slot_id)
    if slot.asset_id is not None:
        raise Conflict(f"slot {slot_id} is already filled by asset {slot.asset_id}", code="slot_filled")
    asset = await get_asset(ports, principal, asset_id)
    target_id, content = _filled(asset, slot)
    before = slot.updated_at
    slot = slot.model_copy(update={"asset_id": asset_id, "target_id": target_id, "updated_at": ports.clock.now()})
    await _save_slot(ports, slot, before)  # claim the slot first, so two assets never both fill it
    try:
        asset, outgoing = await _edit(ports, principal, asset, content)
    except BaseException:
        empty = slot.model_copy(update={"asset_id": None, "target_id": None, "updated_at": ports.clock.now()})
        await ports.slots.save(empty, expected_updated_at=slot.updated_at)
        raise
    return slot, asset, outgoing


async def delete_slot(ports: Ports, principal: Principal, slot_id: str) -> None:
    principal.require(Role.EDITOR)
    if not await ports.slots.delete(principal.workspace_id, slot_id):
        raise NotFound(f"slot {slot_id} not found")
