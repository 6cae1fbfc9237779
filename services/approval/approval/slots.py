"""The content plan: slots on the calendar (time, account, format, brief) before content exists.

Pure rules; the handlers load and save. A slot is filled by one asset's target for the slot's
account, which then takes the slot's time and format.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import AwareDatetime, BaseModel, Field

from approval.domain import PLATFORM_RULES, InvalidContent, TargetSpec, Violation
from shared.events import Platform, PostFormat


class Slot(BaseModel):
    slot_id: str
    workspace_id: str
    account_id: str
    at: AwareDatetime = Field(description="When the planned post goes out (UTC)")
    format: PostFormat
    brief: str = ""
    asset_id: str | None = None
    target_id: str | None = None
    created_at: AwareDatetime
    created_by: str
    updated_at: AwareDatetime


def check_format(platform: Platform, fmt: PostFormat, *, slot_id: str | None = None) -> None:
    """Refuse a format the account's channel does not offer (the PLATFORMS.md format table)."""
    offered = PLATFORM_RULES[platform].formats
    if fmt not in offered:
        names = ", ".join(sorted(f.value for f in offered))
        message = f"{platform.value} does not offer {fmt.value}; it offers {names}"
        raise InvalidContent(message, violations=[Violation("format_unsupported", message, slot_id)])


def filled_targets(targets: Sequence[TargetSpec], slot: Slot) -> tuple[str, list[TargetSpec]]:
    """The asset's targets after filling `slot`: the target for the slot's account takes its format.
    Returns that target's id too."""
    matching = [t for t in targets if t.account_id == slot.account_id]
    if len(matching) != 1:
        message = (
            f"the asset needs exactly one target for account {slot.account_id} to fill this slot "
            f"(it has {len(matching)})"
        )
        raise InvalidContent(message, violations=[Violation("slot_account", message, slot.slot_id)])
    chosen = matching[0]
    return chosen.target_id, [t.model_copy(update={"format": slot.format}) if t is chosen else t for t in targets]
