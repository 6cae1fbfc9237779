"""The MongoDB adapters on the real MongoDB-compatible server: the handler scenarios that depend on
storage (outbox relay, compare-and-set, purge), run against Mongo instead of the fakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from approval import handlers
from approval.adapters.mongo import (
    MongoAccounts,
    MongoApiKeys,
    MongoAssets,
    MongoAttempts,
    MongoPolicies,
    MongoPosts,
    MongoSlots,
    MongoWorkspaces,
)
from approval.domain import AttemptEntry, AttemptOutcome, PostStatus, PostView
from approval.handlers import Ports
from shared.events import ErrorCode, Platform
from shared.ids import post_id_for
from shared.mongo import Document
from tests.approval.fakes import FakeClock, FakeMediaProbe, FakeVault
from tests.approval.test_attempts import published, retry
from tests.approval.test_handlers import account, draft, published_event, workspace

pytestmark = pytest.mark.integration


def mongo_ports(db: AsyncDatabase[Document], clock: FakeClock) -> Ports:
    return Ports(
        workspaces=MongoWorkspaces(db),
        keys=MongoApiKeys(db),
        accounts=MongoAccounts(db),
        assets=MongoAssets(db),
        posts=MongoPosts(db),
        attempts=MongoAttempts(db),
        vault=FakeVault(),
        clock=clock,
        policies=MongoPolicies(db),
        slots=MongoSlots(db),
        media=FakeMediaProbe(),
    )


async def test_outbox_holds_events_until_published_and_local_times_survive(db: AsyncDatabase[Document]) -> None:
    clock = FakeClock()
    ports = mongo_ports(db, clock)
    admin = await workspace(ports)
    asset, _ = await handlers.create_asset(ports, admin, draft(await account(ports, admin)))
    approved, outgoing = await handlers.approve(ports, admin, asset.asset_id)
    assert approved.schedule.local_time is not None
    assert approved.schedule.local_time.tzinfo is None
    stored = await handlers.get_asset(ports, admin, asset.asset_id)
    assert stored.schedule == asset.schedule  # a wall time comes back without an offset
    pending = await ports.assets.pending_outbox(clock.now() + timedelta(seconds=1))
    assert [(a, [o.event.event_id for o in items]) for a, items in pending] == [
        (asset.asset_id, [outgoing[0].event.event_id])
    ]
    await ports.assets.outbox_done(asset.asset_id, [str(outgoing[0].event.event_id)])
    assert await ports.assets.pending_outbox(clock.now() + timedelta(seconds=1)) == []
    assert set(stored.post_statuses.values()) == {PostStatus.PENDING}


async def test_concurrent_decisions_one_wins(db: AsyncDatabase[Document]) -> None:
    ports = mongo_ports(db, FakeClock())
    admin = await workspace(ports)
    asset, _ = await handlers.create_asset(ports, admin, draft(await account(ports, admin)))
    stale = await handlers.get_asset(ports, admin, asset.asset_id)
    await handlers.reject(ports, admin, asset.asset_id, reason="no")
    ports.clock.advance(seconds=1)  # type: ignore[attr-defined]
    saved = await ports.assets.save(stale, expected_updated_at=stale.updated_at - timedelta(seconds=5))
    assert saved is False


async def test_purge_removes_only_long_deleted_assets(db: AsyncDatabase[Document]) -> None:
    clock = FakeClock()
    ports = mongo_ports(db, clock)
    admin = await workspace(ports)
    acc = await account(ports, admin)
    old, _ = await handlers.create_asset(ports, admin, draft(acc))
    young, _ = await handlers.create_asset(ports, admin, draft(acc))
    await handlers.bulk_delete(ports, admin, [old.asset_id])
    clock.advance(days=20)
    await handlers.bulk_delete(ports, admin, [young.asset_id])
    clock.advance(days=11)
    assert await handlers.purge_deleted(ports) == 1
    assert await ports.assets.get_any(old.asset_id) is None
    assert await ports.assets.get_any(young.asset_id) is not None


async def test_attempt_history_is_one_id_range_per_post_and_stores_any_raw_payload(db: AsyncDatabase[Document]) -> None:
    attempts = MongoAttempts(db)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    # What a platform may answer and FerretDB cannot store as a document: nested arrays, dotted keys.
    raw = {"status": 400, "errors": [[{"field.name": "caption"}]], "$why": "x"}

    def entry(post_id: str, attempt: int, outcome: AttemptOutcome) -> AttemptEntry:
        return AttemptEntry(
            event_id=f"e-{post_id}-{attempt}",
            post_id=post_id,
            workspace_id="ws",
            attempt=attempt,
            outcome=outcome,
            at=at + timedelta(minutes=attempt),
            producer="publisher",
            error_code=None if outcome is AttemptOutcome.PUBLISHED else ErrorCode.NETWORK_ERROR,
            platform_error=None if outcome is AttemptOutcome.PUBLISHED else raw,
        )

    first = [entry("p1", 2, AttemptOutcome.PUBLISHED), entry("p1", 1, AttemptOutcome.RETRY_SCHEDULED)]
    await attempts.add_many(first)
    await attempts.add_many([*first, entry("p10", 1, AttemptOutcome.RETRY_SCHEDULED)])  # with a redelivery
    history = await attempts.of_post("p1")
    assert [(e.attempt, e.outcome) for e in history] == [
        (1, AttemptOutcome.RETRY_SCHEDULED),
        (2, AttemptOutcome.PUBLISHED),
    ]
    assert history[0].platform_error == raw
    await attempts.delete_of_posts(["p1"])
    assert await attempts.of_post("p1") == []
    assert len(await attempts.of_post("p10")) == 1


class RacingPosts(MongoPosts):
    """Posts where a person's command lands between the board's read and its bulk write, once."""

    def __init__(self, db: AsyncDatabase[Document], post_id: str) -> None:
        super().__init__(db)
        self.post_id: str | None = post_id

    async def replace_many(self, changes: Sequence[tuple[PostView, PostView | None]]) -> set[str]:
        if self.post_id is not None:
            stored = await self.get_any(self.post_id)
            assert stored is not None
            command = {"name": "cancel", "event_id": "e-cancel"}
            assert await self.replace(
                stored.model_copy(update={"last_command": command, "rev": stored.rev + 1}), expected=stored
            )
            self.post_id = None
        return await super().replace_many(changes)


async def test_a_batch_of_post_events_is_written_in_bulk_and_a_concurrent_command_survives_it(
    db: AsyncDatabase[Document],
) -> None:
    ports = mongo_ports(db, FakeClock())
    admin = await workspace(ports)
    asset, _ = await handlers.create_asset(ports, admin, draft(await account(ports, admin)))
    asset, _ = await handlers.approve(ports, admin, asset.asset_id)
    known = await ports.posts.get_any(post_id_for(asset.asset_id, "t0"))
    assert known is not None
    ports = replace(ports, posts=RacingPosts(db, known.post_id))
    on_known = published_event(known)
    # "p1" is new to the board: its first event creates it.
    on_new = [retry(1, "502", workspace_id=admin.workspace_id), published(2, workspace_id=admin.workspace_id)]

    await handlers.apply_post_events(ports, [on_new[0], on_known, on_new[1], on_known])

    board = {p.post_id: p for p in await ports.posts.get_many([known.post_id, "p1"])}
    assert (board[known.post_id].status, board[known.post_id].last_command) == (
        PostStatus.PUBLISHED,
        {"name": "cancel", "event_id": "e-cancel"},
    )
    assert (board["p1"].status, board["p1"].attempt) == (PostStatus.PUBLISHED, 2)
    stored = await handlers.get_asset(ports, admin, asset.asset_id)
    assert stored.post_statuses[known.post_id] is PostStatus.PUBLISHED
    assert [e.attempt for e in await ports.attempts.of_post("p1")] == [1, 2]
    await handlers.apply_post_events(ports, [on_known, *on_new])  # a redelivery changes nothing
    assert {p.post_id: p.rev for p in await ports.posts.get_many(list(board))} == {i: p.rev for i, p in board.items()}


async def test_posts_are_read_by_id_in_chunks(db: AsyncDatabase[Document]) -> None:
    posts = MongoPosts(db)
    views = [
        PostView(post_id=f"p{i}", workspace_id="ws", asset_id="a", account_id="acc", platform=Platform.X)
        for i in range(1201)
    ]
    assert await posts.replace_many([(view, None) for view in views]) == set()
    assert await posts.replace_many([(views[0], None)]) == {"p0"}  # already there: not written
    found = await posts.get_many([f"p{i}" for i in range(0, 1300, 2)])
    assert sorted(p.post_id for p in found) == sorted(f"p{i}" for i in range(0, 1201, 2))
