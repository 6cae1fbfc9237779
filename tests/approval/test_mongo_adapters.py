"""The MongoDB adapters on the real MongoDB-compatible server: the handler scenarios that depend on
storage (outbox relay, compare-and-set, purge), run against Mongo instead of the fakes."""

from __future__ import annotations

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
from approval.domain import AttemptEntry, AttemptOutcome, PostStatus
from approval.handlers import Ports
from shared.events import ErrorCode
from shared.mongo import Document
from tests.approval.fakes import FakeClock, FakeMediaProbe, FakeVault
from tests.approval.test_handlers import account, draft, workspace

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

    for item in [entry("p1", 2, AttemptOutcome.PUBLISHED), entry("p1", 1, AttemptOutcome.RETRY_SCHEDULED)] * 2:
        await attempts.add(item)  # the second round is a redelivery
    await attempts.add(entry("p10", 1, AttemptOutcome.RETRY_SCHEDULED))
    history = await attempts.of_post("p1")
    assert [(e.attempt, e.outcome) for e in history] == [
        (1, AttemptOutcome.RETRY_SCHEDULED),
        (2, AttemptOutcome.PUBLISHED),
    ]
    assert history[0].platform_error == raw
    await attempts.delete_of_posts(["p1"])
    assert await attempts.of_post("p1") == []
    assert len(await attempts.of_post("p10")) == 1
