"""Request and response bodies of the HTTP API. Responses never carry tokens or key hashes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, field_validator

from approval import domain
from approval.autopilot import ApprovalPolicy, PolicyChange, PolicyRules, PolicyScope
from approval.domain import AggregateStatus, AssetState, PendingEdits, PostStatus, Role, TargetSpec
from approval.slots import Slot
from shared import scopes
from shared.credentials import OAuthTokens
from shared.events import AccountStatus, ErrorCode, MediaRef, Platform, PostFormat, Schedule

T = TypeVar("T")

Name = Field(min_length=1, max_length=200)


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    rule: str
    message: str
    target_id: str | None = None


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable, e.g. validation_failed, forbidden, not_found")
    message: str = Field(description="What went wrong, for a person")
    violations: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorBody


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    next_offset: int | None = Field(description="Pass as offset for the next page; null on the last page")


# ---- workspaces and keys


class WorkspaceCreate(In):
    name: str = Name
    timezone: str = Field(default="UTC", max_length=64)
    admin_key_name: str = Field(default="admin", min_length=1, max_length=200)


class WorkspaceUpdate(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    publishing_enabled: bool | None = None
    pending_edits: PendingEdits | None = Field(
        default=None, description="Editing pending content: new_version (stays queued) or back_to_draft"
    )


class WorkspaceOut(BaseModel):
    workspace_id: str
    name: str
    timezone: str
    publishing_enabled: bool
    pending_edits: PendingEdits
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, w: domain.Workspace) -> WorkspaceOut:
        return cls.model_validate(w.model_dump())


class CallerWorkspaceOut(WorkspaceOut):
    """The caller's workspace and who the caller is: other services verify API keys with it."""

    caller_key_id: str
    caller_role: Role


class KeyCreate(In):
    name: str = Name
    role: Role


class KeyOut(BaseModel):
    key_id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, k: domain.ApiKey) -> KeyOut:
        return cls.model_validate(k.model_dump(exclude={"secret_hash", "workspace_id"}))


class KeyCreatedOut(KeyOut):
    api_key: str = Field(description="Shown once; store it now. Send as 'Authorization: Bearer <api_key>'")


class BootstrapOut(BaseModel):
    workspace: WorkspaceOut
    api_key: str = Field(description="The first admin key; shown once")


# ---- accounts


class TokensIn(In):
    access_token: SecretStr = Field(min_length=1, max_length=8192)
    refresh_token: SecretStr | None = Field(default=None, max_length=8192)
    expires_at: AwareDatetime | None = None
    scopes: list[str] = Field(default_factory=list, max_length=100)
    token_type: str = Field(default="bearer", min_length=1, max_length=40)

    def tokens(self) -> OAuthTokens:
        return OAuthTokens(**self.model_dump())


class AccountConnect(In):
    platform: Platform
    handle: str = Name
    remote_id: str | None = Field(default=None, max_length=200)
    profile: dict[str, Any] = Field(default_factory=dict, description="The platform profile as the platform gave it")
    timezone: str = Field(default="UTC", max_length=64)
    tokens: TokensIn

    _storable = field_validator("profile")(domain.storable_mapping)


class AccountUpdate(In):
    handle: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)


class AccountReconnect(In):
    tokens: TokensIn


class AccountOut(BaseModel):
    account_id: str
    platform: Platform
    handle: str
    remote_id: str | None
    profile: dict[str, Any]
    timezone: str
    status: AccountStatus
    status_reason: str | None
    status_changed_at: datetime
    scopes: list[str] = Field(description="The OAuth scopes granted when the account was (re)connected")
    can_publish: bool = Field(description="Whether the granted scopes allow publishing (Telegram bots always can)")
    publish_scopes: list[str] = Field(description="The scopes of which one grants publishing on this platform")
    token_expires_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, a: domain.Account) -> AccountOut:
        return cls.model_validate(
            {
                **a.model_dump(),
                "can_publish": scopes.can_publish(a.platform, a.scopes),
                "publish_scopes": sorted(scopes.PUBLISH_SCOPES.get(a.platform, ())),
            }
        )


# ---- assets


class MediaIn(In):
    url: str = Field(min_length=1, max_length=2048)
    type: Literal["image", "video"]
    mime_type: str | None = Field(default=None, max_length=100)
    size_bytes: int | None = Field(default=None, ge=0, le=10**12)
    width: int | None = Field(default=None, gt=0, le=100_000)
    height: int | None = Field(default=None, gt=0, le=100_000)
    duration_seconds: float | None = Field(default=None, ge=0, le=10**6)

    def ref(self) -> MediaRef:
        return MediaRef(**self.model_dump())


class AssetContentIn(In):
    caption: str = Field(default="", max_length=70_000)
    media: list[MediaIn] = Field(default_factory=list, max_length=35)
    targets: list[TargetSpec] = Field(min_length=1, max_length=50)
    schedule: Schedule
    campaign: str | None = Field(default=None, max_length=200)
    source: str | None = Field(default=None, max_length=200, description="Who made it, e.g. a generator's name")


class AssetIn(AssetContentIn):
    draft: bool = Field(default=False, description="Save as a draft: not checked, not queued, until submitted")


class AssetVersionIn(AssetContentIn):
    expected_version: int | None = Field(default=None, ge=1)


class SubmitIn(In):
    expected_version: int | None = Field(default=None, ge=1)


class ApproveIn(In):
    deselect_targets: list[str] = Field(default_factory=list, max_length=50)
    expected_version: int | None = Field(default=None, ge=1)


class RejectIn(In):
    reason: str = Field(min_length=1, max_length=2000)
    discard: bool = Field(default=False, description="Discard instead of reject (content is thrown away)")
    expected_version: int | None = Field(default=None, ge=1)


class RegenerateIn(In):
    feedback: str = Field(min_length=1, max_length=5000)
    expected_version: int | None = Field(default=None, ge=1)


class BulkIds(In):
    asset_ids: list[str] = Field(min_length=1, max_length=200)


class BulkRejectIn(BulkIds):
    reason: str = Field(min_length=1, max_length=2000)
    discard: bool = False


class BulkFailure(BaseModel):
    asset_id: str
    code: str
    message: str


class BulkOut(BaseModel):
    succeeded: list[str]
    failed: list[BulkFailure]


class HistoryOut(BaseModel):
    at: datetime
    action: str
    by: str | None
    version: int
    note: str | None


class AssetOut(BaseModel):
    asset_id: str
    version: int
    state: AssetState
    aggregate_status: AggregateStatus | None = Field(description="For approved assets: derived from their posts")
    caption: str
    media: list[MediaRef]
    targets: list[TargetSpec]
    deselected_targets: list[str]
    schedule: Schedule
    campaign: str | None
    source: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    feedback: str | None
    deleted_at: datetime | None
    approved_by_policies: list[str] = Field(description="Set when autopilot approved it: the policies that did")
    pending_reason: str | None = Field(description="Why an autopilot policy left it for a person")
    history: list[HistoryOut]

    @classmethod
    def of(cls, a: domain.Asset) -> AssetOut:
        return cls.model_validate(
            {
                **a.model_dump(exclude={"post_statuses", "deselected", "versions"}),
                "aggregate_status": domain.asset_aggregate(a),
                "deselected_targets": a.deselected,
            }
        )


class AssetVersionsOut(BaseModel):
    asset_id: str
    version: int = Field(description="The current version")
    versions: list[domain.AssetVersion] = Field(description="The content of every saved version, oldest first")


# ---- approval policies


class PolicyIn(PolicyRules):
    model_config = ConfigDict(extra="forbid")

    scope: PolicyScope
    scope_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="The account id or campaign; none for the workspace"
    )
    sources: list[str] = Field(default_factory=list, max_length=50)

    def rules(self) -> PolicyRules:
        return PolicyRules.model_validate(self.model_dump(exclude={"scope", "scope_id"}))


class PolicyOut(PolicyRules):
    policy_id: str
    scope: PolicyScope
    scope_id: str | None
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, p: ApprovalPolicy) -> PolicyOut:
        return cls.model_validate({**p.model_dump(), "policy_id": p.policy_id})


class PolicyChangeOut(BaseModel):
    change_id: str
    policy_id: str
    at: datetime
    by: str
    before: dict[str, Any] | None = Field(description="The rules before; null when the policy was new")
    after: dict[str, Any]

    @classmethod
    def of(cls, c: PolicyChange) -> PolicyChangeOut:
        return cls.model_validate(c.model_dump())


# ---- content plan slots


def _schedulable(at: datetime | None) -> datetime | None:
    if at is not None and not domain.EARLIEST_SCHEDULE <= at <= domain.LATEST_SCHEDULE:
        raise ValueError("must fall between the years 2000 and 2100")
    return at


class SlotIn(In):
    account_id: str = Field(min_length=1, max_length=200)
    at: AwareDatetime = Field(description="When the planned post should go out")
    format: PostFormat
    brief: str = Field(default="", max_length=5000, description="The angle or brief for whoever makes the content")

    _in_range = field_validator("at")(_schedulable)


class SlotUpdate(In):
    at: AwareDatetime | None = None
    format: PostFormat | None = None
    brief: str | None = Field(default=None, max_length=5000)

    _in_range = field_validator("at")(_schedulable)


class SlotFillIn(In):
    asset_id: str = Field(min_length=1, max_length=200)


class SlotOut(BaseModel):
    slot_id: str
    account_id: str
    at: datetime
    format: PostFormat
    brief: str
    asset_id: str | None = Field(description="The asset that fills it; null: a gap")
    target_id: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime

    @classmethod
    def of(cls, s: Slot) -> SlotOut:
        return cls.model_validate(s.model_dump())


class SlotFilledOut(BaseModel):
    slot: SlotOut
    asset: AssetOut


# ---- posts and calendar


class RescheduleIn(In):
    schedule: Schedule


class CancelIn(In):
    reason: str | None = Field(default=None, max_length=2000)


class CommandOut(BaseModel):
    post_id: str
    command: str
    command_event_id: str
    accepted: Literal[True] = True
    note: str = "sent to the scheduler; the post's status changes when it acts"


class PostOut(BaseModel):
    post_id: str
    asset_id: str
    target_id: str | None
    account_id: str
    platform: Platform
    format: PostFormat | None
    campaign: str | None
    status: PostStatus
    stored_status: PostStatus = Field(description="The last status an event reported (status may be derived)")
    due_at: datetime | None
    attempt: int
    next_attempt_at: datetime | None
    error_code: ErrorCode | None
    error_message: str | None
    platform_error: dict[str, Any] | None
    held_reason: str | None
    remote_id: str | None
    permalink: str | None
    published_at: datetime | None
    visibility: str | None
    metrics: dict[str, int | None]
    metrics_collected_at: datetime | None
    last_command: dict[str, Any] | None

    @classmethod
    def of(cls, p: domain.PostView, now: datetime) -> PostOut:
        return cls.model_validate(
            {**p.model_dump(), "status": domain.effective_status(p, now), "stored_status": p.status}
        )


class AttemptOut(BaseModel):
    attempt: int = Field(description="0: failed before any attempt (e.g. an invalid schedule)")
    outcome: domain.AttemptOutcome
    at: datetime
    error_code: ErrorCode | None
    message: str | None = Field(description="The platform's own words, or why the post waits")
    platform_error: dict[str, Any] | None = Field(description="The platform's raw error, secrets removed")
    next_attempt_at: datetime | None
    remote_id: str | None
    permalink: str | None
    event_id: str = Field(description="The event that reported this outcome")


class AttemptsOut(BaseModel):
    post_id: str
    attempts: list[AttemptOut] = Field(description="Oldest first")

    @classmethod
    def of(cls, post_id: str, entries: list[domain.AttemptEntry]) -> AttemptsOut:
        return cls(post_id=post_id, attempts=[AttemptOut.model_validate(e.model_dump()) for e in entries])


class AssetPostsOut(BaseModel):
    asset_id: str
    state: AssetState
    aggregate_status: AggregateStatus | None
    posts: list[PostOut]


class CalendarEntry(BaseModel):
    post_id: str
    asset_id: str
    platform: Platform
    account_id: str
    format: PostFormat | None
    status: PostStatus
    campaign: str | None
    due_at: datetime | None
    local_time: datetime | None = Field(description="due_at in the workspace's timezone")
    permalink: str | None


class CalendarOut(BaseModel):
    timezone: str
    start: datetime
    end: datetime
    entries: list[CalendarEntry]
    slots: list[SlotOut] = Field(
        description="Planned slots in the range, filled or not (asset_id null: a gap); on the first page, "
        "and only without platform, status or campaign filters"
    )
    next_offset: int | None
