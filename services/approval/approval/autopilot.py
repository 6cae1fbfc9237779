"""Approval policies ("autopilot"): which content may approve itself, pure rules without I/O.

A policy belongs to a workspace, an account or a campaign. Each target of an asset is governed
by the most specific policy that covers it (campaign, then account, then workspace); without
any, approval is manual. An asset approves itself only when every target's policy is automatic,
trusts the asset's source and allows the target's format and platform. The daily cap is counted
by the handlers (it needs storage); everything else is decided here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from approval.domain import TargetSpec
from shared.events import Platform, PostFormat


class PolicyScope(StrEnum):
    WORKSPACE = "workspace"
    ACCOUNT = "account"
    CAMPAIGN = "campaign"


class ApprovalMode(StrEnum):
    MANUAL = "manual"
    AUTOMATIC = "automatic"


def policy_id(scope: PolicyScope, scope_id: str | None) -> str:
    """Readable and unique within a workspace: `workspace`, `account:<id>`, `campaign:<name>`."""
    return scope.value if scope is PolicyScope.WORKSPACE else f"{scope.value}:{scope_id}"


class PolicyRules(BaseModel):
    """What an admin sets; the same shape is recorded in the audit trail."""

    mode: ApprovalMode = ApprovalMode.MANUAL
    sources: list[str] = Field(default_factory=list, description="Automatic only for content from these sources")
    formats: list[PostFormat] = Field(default_factory=list, description="Allowed formats; empty: any")
    platforms: list[Platform] = Field(default_factory=list, description="Allowed platforms; empty: any")
    daily_cap: int | None = Field(default=None, ge=1, description="Auto-approvals per day in this scope")

    @model_validator(mode="after")
    def _automatic_names_sources(self) -> Self:
        if self.mode is ApprovalMode.AUTOMATIC and not self.sources:
            raise ValueError("an automatic policy must name the sources it trusts (e.g. ['generator-x'])")
        return self


class ApprovalPolicy(PolicyRules):
    workspace_id: str
    scope: PolicyScope
    scope_id: str | None = None
    updated_at: AwareDatetime
    updated_by: str

    @property
    def policy_id(self) -> str:
        return policy_id(self.scope, self.scope_id)


class PolicyChange(BaseModel):
    """One audit record: who changed which policy when, from what to what."""

    change_id: str
    workspace_id: str
    policy_id: str
    at: AwareDatetime
    by: str
    before: dict[str, Any] | None
    after: dict[str, Any]


def applicable_policy_ids(campaign: str | None, account_ids: Sequence[str]) -> list[str]:
    """Every policy id that may govern an asset with this campaign and these accounts."""
    ids = [policy_id(PolicyScope.ACCOUNT, a) for a in dict.fromkeys(account_ids)]
    if campaign:
        ids.append(policy_id(PolicyScope.CAMPAIGN, campaign))
    return [*ids, policy_id(PolicyScope.WORKSPACE, None)]


def governing_policy(
    target: TargetSpec, campaign: str | None, policies: Mapping[str, ApprovalPolicy]
) -> ApprovalPolicy | None:
    for pid in (
        policy_id(PolicyScope.CAMPAIGN, campaign) if campaign else None,
        policy_id(PolicyScope.ACCOUNT, target.account_id),
        policy_id(PolicyScope.WORKSPACE, None),
    ):
        if pid is not None and pid in policies:
            return policies[pid]
    return None


@dataclass(frozen=True)
class AutopilotDecision:
    policies: tuple[str, ...] = ()  # the policies that approve it (each counts against its cap)
    reason: str | None = None  # why an automatic policy left it for a person

    @property
    def approves(self) -> bool:
        return bool(self.policies)


def decide(
    *,
    source: str | None,
    campaign: str | None,
    targets: Sequence[tuple[TargetSpec, Platform]],
    policies: Mapping[str, ApprovalPolicy],
) -> AutopilotDecision:
    """Whether the policies approve this content (before the daily cap).

    Content from a source no automatic policy trusts is simply manual: no reason is given, since
    nothing was refused. A reason is given when a trusting policy's limits keep it for a person.
    """
    governing = [(t, platform, governing_policy(t, campaign, policies)) for t, platform in targets]
    trusting = [p for _, _, p in governing if p and p.mode is ApprovalMode.AUTOMATIC and source in p.sources]
    if not trusting:
        return AutopilotDecision()
    for target, platform, policy in governing:
        where = f"target {target.target_id}"
        if policy is None or policy.mode is ApprovalMode.MANUAL:
            name = policy.policy_id if policy else "the default"
            return AutopilotDecision(reason=f"{where} is under {name} policy, which is manual")
        if source not in policy.sources:
            return AutopilotDecision(reason=f"{where}: policy {policy.policy_id} does not trust source {source!r}")
        if policy.formats and target.format not in policy.formats:
            allowed = ", ".join(f.value for f in policy.formats)
            return AutopilotDecision(
                reason=f"{where} is a {target.format.value}; policy {policy.policy_id} allows only {allowed}"
            )
        if policy.platforms and platform not in policy.platforms:
            allowed = ", ".join(p.value for p in policy.platforms)
            return AutopilotDecision(
                reason=f"{where} is on {platform.value}; policy {policy.policy_id} allows only {allowed}"
            )
    ids = tuple(dict.fromkeys(p.policy_id for _, _, p in governing if p is not None))
    return AutopilotDecision(policies=ids)
