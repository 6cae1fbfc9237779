"""Use cases against in-memory adapters: what is saved and which events come out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from approval import handlers
from approval.domain import (
    AssetState,
    Conflict,
    Forbidden,
    InvalidContent,
    NotFound,
    PostStatus,
    PostView,
    Role,
    TargetSpec,
)
from approval.handlers import AssetDraft, Ports, Principal
from shared import topics
from shared.credentials import OAuthTokens
from shared.events import (
    AccountStatus,
    AccountStatusChanged,
    AssetApproved,
    MediaRef,
    Platform,
    PostFormat,
    PostPublished,
    PostRetryRequested,
    Schedule,
)
from shared.ids import post_id_for
from tests.approval.fakes import FakeClock, fake_ports

TOKENS = OAuthTokens(access_token=SecretStr("access-secret-123"), refresh_token=SecretStr("refresh-secret-456"))
VIDEO = MediaRef(url="https://cdn.example/v.mp4", type="video", duration_seconds=20)


async def workspace(ports: Ports, *, publishing: bool = True) -> Principal:
    _, key = await handlers.bootstrap_workspace(ports, name="Agency", timezone="Europe/Berlin", admin_key_name="a")
    admin = await handlers.authenticate(ports, key)
    if publishing:
        await handlers.update_workspace(ports, admin, publishing_enabled=True)
    return admin


async def account(ports: Ports, admin: Principal, platform: Platform = Platform.INSTAGRAM) -> str:
    acct, _ = await handlers.connect_account(
        ports,
        admin,
        platform=platform,
        handle="@brand",
        remote_id=None,
        profile={},
        timezone="Asia/Tokyo",
        tokens=TOKENS,
    )
    return acct.account_id


def draft(*account_ids: str) -> AssetDraft:
    targets = [TargetSpec(target_id=f"t{i}", account_id=a, format=PostFormat.REEL) for i, a in enumerate(account_ids)]
    return AssetDraft("Launch", [VIDEO], targets, Schedule(local_time=datetime(2026, 12, 1, 9, 0)), "spring")


async def test_approve_emits_asset_approved_with_account_timezone_and_creates_pending_posts() -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    acc1, acc2 = await account(ports, admin), await account(ports, admin)
    asset, _ = await handlers.create_asset(ports, admin, draft(acc1, acc2))
    approved, outgoing = await handlers.approve(ports, admin, asset.asset_id, deselect=["t1"])
    assert approved.state is AssetState.APPROVED
    (out,) = outgoing
    assert out.topic == topics.ASSETS_APPROVED
    assert out.key == asset.asset_id
    assert isinstance(out.event, AssetApproved)
    assert [(t.target_id, t.timezone, t.platform) for t in out.event.targets] == [
        ("t0", "Asia/Tokyo", Platform.INSTAGRAM)
    ]
    post = await ports.posts.get_any(post_id_for(asset.asset_id, "t0"))
    assert post is not None
    assert post.status is PostStatus.PENDING
    assert post.due_at == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
    assert await ports.posts.get_any(post_id_for(asset.asset_id, "t1")) is None  # suppressed


async def test_publishing_must_be_switched_on_by_an_admin() -> None:
    ports = fake_ports()
    admin = await workspace(ports, publishing=False)
    asset, _ = await handlers.create_asset(ports, admin, draft(await account(ports, admin)))
    with pytest.raises(Conflict) as info:
        await handlers.approve(ports, admin, asset.asset_id)
    assert info.value.code == "publishing_disabled"
    _, key = await handlers.create_key(ports, admin, name="ed", role=Role.APPROVER)
    approver = await handlers.authenticate(ports, key)
    with pytest.raises(Forbidden):
        await handlers.update_workspace(ports, approver, publishing_enabled=True)


async def test_roles() -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    acc = await account(ports, admin)
    keys = {role: (await handlers.create_key(ports, admin, name=role.value, role=role))[1] for role in Role}
    viewer = await handlers.authenticate(ports, keys[Role.VIEWER])
    editor = await handlers.authenticate(ports, keys[Role.EDITOR])
    with pytest.raises(Forbidden):
        await handlers.create_asset(ports, viewer, draft(acc))
    asset, _ = await handlers.create_asset(ports, editor, draft(acc))
    with pytest.raises(Forbidden):
        await handlers.approve(ports, editor, asset.asset_id)
    with pytest.raises(Forbidden):
        await handlers.connect_account(
            ports, editor, platform=Platform.X, handle="h", remote_id=None, profile={}, timezone="UTC", tokens=TOKENS
        )


async def test_other_workspaces_see_nothing() -> None:
    ports = fake_ports()
    a, b = await workspace(ports), await workspace(ports)
    acc = await account(ports, a)
    asset, _ = await handlers.create_asset(ports, a, draft(acc))
    with pytest.raises(NotFound):
        await handlers.get_asset(ports, b, asset.asset_id)
    with pytest.raises(NotFound):
        await handlers.approve(ports, b, asset.asset_id)
    with pytest.raises(NotFound):
        await handlers.get_account(ports, b, acc)
    with pytest.raises(InvalidContent) as info:  # b cannot target a's account either
        await handlers.create_asset(ports, b, draft(acc))
    assert info.value.violations[0].rule == "unknown_account"


async def test_invalid_content_is_refused_at_creation_naming_target_and_rule() -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    acc = await account(ports, admin, Platform.X)
    with pytest.raises(InvalidContent) as info:
        await handlers.create_asset(ports, admin, draft(acc))
    assert [(v.target_id, v.rule) for v in info.value.violations] == [("t0", "format_unsupported")]


async def test_regeneration_and_a_new_version_return_to_pending() -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    acc = await account(ports, admin)
    asset, _ = await handlers.create_asset(ports, admin, draft(acc))
    asset, outgoing = await handlers.request_regeneration(ports, admin, asset.asset_id, feedback="shorter")
    assert asset.state is AssetState.REGENERATION_REQUESTED
    assert outgoing[0].topic == topics.ASSETS_REGENERATION_REQUESTED
    with pytest.raises(Conflict):
        await handlers.approve(ports, admin, asset.asset_id)
    asset, _ = await handlers.edit_asset(ports, admin, asset.asset_id, draft(acc))
    assert (asset.state, asset.version) == (AssetState.PENDING_APPROVAL, 2)
    rejected, outgoing = await handlers.reject(ports, admin, asset.asset_id, reason="off brand", discard=True)
    assert rejected.state is AssetState.DISCARDED
    assert outgoing[0].topic == topics.ASSETS_REJECTED


def published_event(post: PostView) -> PostPublished:
    """The publisher's PostPublished for a post on the board (its first attempt)."""
    return PostPublished(
        producer="publisher",
        workspace_id=post.workspace_id,
        correlation_id=post.asset_id,
        post_id=post.post_id,
        asset_id=post.asset_id,
        platform=post.platform,
        account_id=post.account_id,
        remote_id="r",
        published_at=datetime(2026, 12, 1, tzinfo=UTC),
        attempt=1,
    )


async def test_read_model_updates_the_asset_aggregate_and_retry_needs_a_failed_post() -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    asset, _ = await handlers.create_asset(ports, admin, draft(await account(ports, admin)))
    asset, _ = await handlers.approve(ports, admin, asset.asset_id)
    post_id = post_id_for(asset.asset_id, "t0")
    with pytest.raises(Conflict) as info:
        await handlers.retry_post(ports, admin, post_id)
    assert info.value.code == "not_retryable"
    post = await ports.posts.get_any(post_id)
    assert post is not None
    published = published_event(post)
    await handlers.apply_post_events(ports, [published])
    moved = await ports.posts.get_any(post_id)
    await handlers.apply_post_events(ports, [published])
    assert await ports.posts.get_any(post_id) == moved  # a duplicate changes nothing
    stored = await handlers.get_asset(ports, admin, asset.asset_id)
    assert stored.post_statuses == {post_id: PostStatus.PUBLISHED}
    with pytest.raises(Conflict):
        await handlers.cancel_post(ports, admin, post_id, reason=None)


async def test_retry_of_a_failed_post_is_a_command() -> None:
    ports = fake_ports()
    admin = await workspace(ports)
    asset, _ = await handlers.create_asset(ports, admin, draft(await account(ports, admin)))
    asset, _ = await handlers.approve(ports, admin, asset.asset_id)
    post_id = post_id_for(asset.asset_id, "t0")
    post = await ports.posts.get_any(post_id)
    assert post is not None
    await ports.posts.replace(post.model_copy(update={"status": PostStatus.FAILED, "rev": 1}), expected=post)
    (out,) = await handlers.retry_post(ports, admin, post_id)
    assert out.topic == topics.POSTS_COMMANDS
    assert out.key == post_id
    assert isinstance(out.event, PostRetryRequested)
    stored = await ports.posts.get_any(post_id)
    assert stored is not None
    assert stored.last_command is not None
    assert stored.last_command["name"] == "retry"


async def test_soft_delete_restore_and_purge_after_30_days() -> None:
    clock = FakeClock()
    ports = fake_ports(clock)
    admin = await workspace(ports)
    asset, _ = await handlers.create_asset(ports, admin, draft(await account(ports, admin)))
    result = await handlers.bulk_delete(ports, admin, [asset.asset_id, "asset_missing"])
    assert result.succeeded == [asset.asset_id]
    assert result.failed["asset_missing"][0] == "not_found"
    with pytest.raises(NotFound):
        await handlers.get_asset(ports, admin, asset.asset_id)
    assert (await handlers.bulk_restore(ports, admin, [asset.asset_id])).succeeded == [asset.asset_id]
    await handlers.bulk_delete(ports, admin, [asset.asset_id])
    clock.advance(days=29)
    assert await handlers.purge_deleted(ports) == 0
    clock.advance(days=2)
    assert await handlers.purge_deleted(ports) == 1


async def test_reconnect_emits_active_status_and_older_status_reports_lose() -> None:
    clock = FakeClock()
    ports = fake_ports(clock)
    admin = await workspace(ports)
    acc = await account(ports, admin)
    clock.advance(minutes=1)
    expired = AccountStatusChanged(
        producer="publisher",
        workspace_id=admin.workspace_id,
        correlation_id=acc,
        account_id=acc,
        platform=Platform.INSTAGRAM,
        status=AccountStatus.TOKEN_EXPIRED,
        occurred_at=clock.now(),
    )
    assert await handlers.apply_account_status(ports, expired)
    clock.advance(minutes=1)
    account_after, outgoing = await handlers.reconnect_account(ports, admin, acc, tokens=TOKENS)
    assert account_after.status is AccountStatus.ACTIVE
    event = outgoing[0].event
    assert isinstance(event, AccountStatusChanged)
    assert event.previous_status is AccountStatus.TOKEN_EXPIRED
    assert not await handlers.apply_account_status(ports, expired)  # redelivered, older
    assert "access-secret-123" not in event.model_dump_json()
