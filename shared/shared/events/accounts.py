"""Events about connected social accounts. Tokens never travel in events."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.events.envelope import AccountStatus, Event, Platform


class AccountVerifyRequested(Event):
    event_type: Literal["AccountVerifyRequested"] = "AccountVerifyRequested"
    account_id: str = Field(min_length=1)
    platform: Platform


class AccountStatusChanged(Event):
    event_type: Literal["AccountStatusChanged"] = "AccountStatusChanged"
    account_id: str = Field(min_length=1)
    platform: Platform
    status: AccountStatus
    previous_status: AccountStatus | None = None
    reason: str | None = None
    scopes: list[str] | None = Field(
        default=None,
        description="The OAuth scopes granted to us, as the platform named them, when the producer knows "
        "them (approval sends them on connect and reconnect); null: not reported, keep what you had.",
    )
