"""Editorial workflow use cases against in-memory adapters: drafts and versions, autopilot
policies, content plan slots, publishing scopes and media probing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from approval import handlers
from approval.autopilot import ApprovalMode, PolicyRules, PolicyScope
from approval.domain import AssetState, Conflict, Forbidden, InvalidContent, PendingEdits, Role
from approval.handlers import Ports
from approval.media import MediaUnreachable, ProbedMedia
from approval.ports import AssetQuery, Page
from shared.events import AssetApproved, MediaRef, Platform, PostFormat
from shared.scopes import can_publish
from tests.approval.fakes import FakeMediaProbe, fake_ports
from tests.approval.test_handlers import account, draft, workspace

AUTO = PolicyRules(mode=ApprovalMode.AUTOMATIC, sources=["generator-x"], formats=[PostFormat.REEL], daily_cap=1)


def from_generator(*account_ids: str) -> handlers.AssetDraft:
    content = draft(*account_ids)
    return handlers.AssetDraft(content.caption, content.media, content.targets, content.schedule, None, "generator-x")


# ---- drafts and versions


async def test_a_draft_is_off_the_queue_cannot_be_approved_and_is_queued_once_submitted() -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    asset, outgoing = await handlers.create_asset(ports, admin, draft(await account(ports, admin)), as_draft=True)
    assert (asset.state, outgoing) == (AssetState.DRAFT, [])
    assert await handlers.list_assets(ports, admin, AssetQuery(), Page()) == []
    with pytest.raises(Conflict, match="cannot approve an asset that is draft"):
        await handlers.approve(ports, admin, asset.asset_id)
    submitted, _ = await handlers.submit(ports, admin, asset.asset_id)
    assert submitted.state is AssetState.PENDING_APPROVAL
    assert [a.asset_id for a in await handlers.list_assets(ports, admin, AssetQuery(), Page())] == [asset.asset_id]


async def test_a_draft_is_checked_when_submitted_not_when_saved() -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    asset, _ = await handlers.create_asset(ports, admin, draft("no-such-account"), as_draft=True)
    with pytest.raises(InvalidContent) as refused:
        await handlers.submit(ports, admin, asset.asset_id)
    assert [v.rule for v in refused.value.violations] == ["unknown_account"]


@pytest.mark.parametrize(
    ("preference", "state"),
    [(PendingEdits.NEW_VERSION, AssetState.PENDING_APPROVAL), (PendingEdits.BACK_TO_DRAFT, AssetState.DRAFT)],
)
async def test_editing_pending_content_follows_the_workspace_preference(
    preference: PendingEdits, state: AssetState
) -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    await handlers.update_workspace(ports, admin, pending_edits=preference)
    acc = await account(ports, admin)
    asset, _ = await handlers.create_asset(ports, admin, draft(acc))
    edited, _ = await handlers.edit_asset(ports, admin, asset.asset_id, draft(acc), expected_version=1)
    assert (edited.state, edited.version) == (state, 2)
    assert [(v.version, v.state) for v in edited.versions] == [(1, AssetState.PENDING_APPROVAL), (2, state)]


# ---- autopilot


async def autopilot_world(rules: PolicyRules = AUTO) -> tuple[Ports, handlers.Principal, str]:
    ports = fake_ports()
    admin = await workspace(ports)
    acc = await account(ports, admin)
    await handlers.set_policy(ports, admin, scope=PolicyScope.ACCOUNT, scope_id=acc, rules=rules)
    return ports, admin, acc


async def test_autopilot_approves_trusted_content_within_its_cap_and_leaves_the_rest_with_a_reason() -> None:
    ports, admin, acc = await autopilot_world()
    first, outgoing = await handlers.create_asset(ports, admin, from_generator(acc))
    assert first.state is AssetState.APPROVED
    assert first.approved_by_policies == [f"account:{acc}"]
    event = outgoing[0].event
    assert isinstance(event, AssetApproved)
    assert (event.auto_approved, event.approval_policies) == (True, [f"account:{acc}"])

    second, outgoing = await handlers.create_asset(ports, admin, from_generator(acc))
    assert (second.state, outgoing) == (AssetState.PENDING_APPROVAL, [])
    assert second.pending_reason == f"policy account:{acc} reached its daily cap of 1 auto-approvals"

    manual, _ = await handlers.create_asset(ports, admin, draft(acc))  # no source: a person's content
    assert (manual.state, manual.pending_reason) == (AssetState.PENDING_APPROVAL, None)


async def test_autopilot_leaves_a_format_beyond_its_limits_for_a_person() -> None:
    ports, admin, acc = await autopilot_world(AUTO.model_copy(update={"formats": [PostFormat.STORY]}))
    asset, outgoing = await handlers.create_asset(ports, admin, from_generator(acc))
    assert (asset.state, outgoing) == (AssetState.PENDING_APPROVAL, [])
    assert asset.pending_reason == f"target t0 is a reel; policy account:{acc} allows only story"


async def test_a_draft_never_auto_approves_until_it_is_submitted() -> None:
    ports, admin, acc = await autopilot_world()
    asset, outgoing = await handlers.create_asset(ports, admin, from_generator(acc), as_draft=True)
    assert (asset.state, outgoing) == (AssetState.DRAFT, [])
    submitted, outgoing = await handlers.submit(ports, admin, asset.asset_id)
    assert submitted.state is AssetState.APPROVED
    assert len(outgoing) == 1


async def test_only_admins_change_policies_and_every_change_is_recorded() -> None:
    ports, admin, acc = await autopilot_world()
    _, key = await handlers.create_key(ports, admin, name="approver", role=Role.APPROVER)
    approver = await handlers.authenticate(ports, key)
    with pytest.raises(Forbidden):
        await handlers.set_policy(ports, approver, scope=PolicyScope.WORKSPACE, scope_id=None, rules=AUTO)
    await handlers.set_policy(ports, admin, scope=PolicyScope.ACCOUNT, scope_id=acc, rules=PolicyRules())
    changes = await handlers.policy_changes(ports, admin, Page())
    assert [(c.policy_id, c.before and c.before["mode"], c.after["mode"]) for c in changes] == [
        (f"account:{acc}", "automatic", "manual"),
        (f"account:{acc}", None, "automatic"),
    ]


def test_an_automatic_policy_must_name_the_sources_it_trusts() -> None:
    with pytest.raises(ValueError, match="must name the sources"):
        PolicyRules(mode=ApprovalMode.AUTOMATIC)


# ---- slots


async def test_a_slot_is_a_gap_until_filled_and_filling_sets_the_target_format_and_time() -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    acc = await account(ports, admin)
    at = ports.clock.now() + timedelta(hours=5)
    slot = await handlers.create_slot(ports, admin, account_id=acc, at=at, fmt=PostFormat.REEL, brief="teaser")
    later = await handlers.create_slot(
        ports, admin, account_id=acc, at=at + timedelta(days=5), fmt=PostFormat.REEL, brief=""
    )
    gaps = await handlers.slot_gaps(ports, admin, timedelta(hours=48), Page())
    assert [s.slot_id for s in gaps] == [slot.slot_id]  # the later one is beyond the horizon

    asset, _ = await handlers.create_asset(ports, admin, draft(acc), as_draft=True)
    filled, asset, _ = await handlers.fill_slot(ports, admin, slot.slot_id, asset.asset_id)
    assert (filled.asset_id, filled.target_id) == (asset.asset_id, "t0")
    assert asset.schedule.at_utc == at
    assert await handlers.slot_gaps(ports, admin, timedelta(hours=48), Page()) == []
    assert later.asset_id is None


async def test_a_format_the_channel_cannot_take_is_refused_for_a_slot() -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    acc = await account(ports, admin)  # instagram: no plain posts
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    with pytest.raises(InvalidContent, match="instagram does not offer post"):
        await handlers.create_slot(ports, admin, account_id=acc, at=at, fmt=PostFormat.POST, brief="")
    slot = await handlers.create_slot(ports, admin, account_id=acc, at=at, fmt=PostFormat.REEL, brief="")
    with pytest.raises(InvalidContent) as refused:
        await handlers.update_slot(ports, admin, slot.slot_id, at=None, fmt=PostFormat.POST, brief=None)
    assert [v.rule for v in refused.value.violations] == ["format_unsupported"]


async def test_changing_a_filled_slot_format_is_refused_when_its_content_cannot_take_it() -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    acc = await account(ports, admin)
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    slot = await handlers.create_slot(ports, admin, account_id=acc, at=at, fmt=PostFormat.REEL, brief="")
    asset, _ = await handlers.create_asset(ports, admin, draft(acc))
    await handlers.fill_slot(ports, admin, slot.slot_id, asset.asset_id)
    with pytest.raises(InvalidContent) as refused:  # one video cannot be a carousel
        await handlers.update_slot(ports, admin, slot.slot_id, at=None, fmt=PostFormat.CAROUSEL, brief=None)
    assert [v.rule for v in refused.value.violations] == ["media_count"]
    assert (await handlers.get_slot(ports, admin, slot.slot_id)).format is PostFormat.REEL


# ---- publishing scopes


@pytest.mark.parametrize(
    ("platform", "scopes", "expected"),
    [
        (Platform.INSTAGRAM, ["instagram_basic"], False),
        (Platform.INSTAGRAM, ["instagram_basic", "instagram_content_publish"], True),
        (Platform.YOUTUBE, ["https://www.googleapis.com/auth/youtube.upload"], True),
        (Platform.YOUTUBE, ["https://www.googleapis.com/auth/youtube.readonly"], False),
        (Platform.X, ["tweet.read", "users.read"], False),
        (Platform.TELEGRAM, [], True),
    ],
)
def test_publishing_needs_the_platform_write_scope(platform: Platform, scopes: list[str], expected: bool) -> None:
    assert can_publish(platform, scopes) is expected


# ---- media probing


async def test_probed_facts_are_checked_against_every_target_and_unreachable_media_named() -> None:
    ports = fake_ports()
    probe = ports.media
    assert isinstance(probe, FakeMediaProbe)
    admin = await workspace(ports)
    acc = await account(ports, admin)
    image = MediaRef(url="https://cdn.example/wide.jpg", type="image")
    probe.files[image.url] = ProbedMedia(kind="image", mime_type="image/jpeg", width=300, height=100, size_bytes=9)
    story = handlers.AssetDraft(
        "Hi", [image], [draft(acc).targets[0].model_copy(update={"format": PostFormat.STORY})], draft(acc).schedule
    )
    with pytest.raises(InvalidContent) as refused:
        await handlers.create_asset(ports, admin, story)
    assert [(v.rule, v.target_id) for v in refused.value.violations] == [("aspect_ratio", "t0")]

    probe.files[image.url] = MediaUnreachable(image.url, "the server answered HTTP 404")
    with pytest.raises(InvalidContent) as refused:
        await handlers.create_asset(ports, admin, story)
    (violation,) = refused.value.violations
    assert (violation.rule, violation.target_id) == ("media_unreachable", "t0")
    assert image.url in violation.message


async def test_approval_probes_again_and_refuses_a_file_that_changed_since_submission() -> None:
    ports = fake_ports()
    probe = ports.media
    assert isinstance(probe, FakeMediaProbe)
    admin = await workspace(ports)
    asset, _ = await handlers.create_asset(ports, admin, draft(await account(ports, admin)))
    probe.files["https://cdn.example/v.mp4"] = ProbedMedia(kind="video", duration_seconds=90)
    with pytest.raises(InvalidContent) as refused:
        await handlers.approve(ports, admin, asset.asset_id)
    assert [v.rule for v in refused.value.violations] == ["media_mismatch"]  # declared 20 s
